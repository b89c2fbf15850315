// What the importer could not convert, and why: every dropped Tyk field is reported with its
// source file and JSON pointer (RFC 6901), so nothing is lost silently. A fatal problem (an
// input that cannot become mtlsgate config at all) stops the import before anything is written.

/** One Tyk field the importer did not carry over (`drop`), or a remark about one it did (`note`). */
export interface Finding {
  /** Input file, as given on the command line (or found under a given directory). */
  file: string;
  /** JSON pointer into that file ("" = the whole document). */
  pointer: string;
  message: string;
  /** Where the pointer lands in the file (1-based), for findings that name a place to edit (a skipped duplicate). */
  line?: number;
  col?: number;
  /** Something that narrowed access in Tyk was not carried over: the imported config grants more (--strict fails on it). */
  wider?: true;
}

/** Thrown for an input that cannot be imported at all; the CLI writes nothing and exits 2. */
export class FatalImportError extends Error {
  override name = 'FatalImportError';
  constructor(
    readonly file: string,
    readonly pointer: string,
    message: string,
  ) {
    super(message);
  }
}

export class ImportReport {
  readonly drops: Finding[] = [];
  readonly notes: Finding[] = [];
  /** Whole definitions left out (a second definition of an API id): the import is incomplete. */
  readonly skipped: Finding[] = [];
  drop(file: string, pointer: string, message: string, access?: 'wider'): void {
    this.drops.push({ file, pointer, message, ...(access === 'wider' ? { wider: true as const } : {}) });
  }
  note(file: string, pointer: string, message: string): void {
    this.notes.push({ file, pointer, message });
  }
}

/** Appends segments to a JSON pointer, escaping "~" and "/" as RFC 6901 says. */
export function ptr(base: string, ...segments: (string | number)[]): string {
  let out = base;
  for (const s of segments) out += `/${String(s).replaceAll('~', '~0').replaceAll('/', '~1')}`;
  return out;
}

/** "file#/pointer" (the pointer after "#", as in a URI fragment), or "file:line:col" when the finding has a position. */
export function where(f: Finding): string {
  return f.line !== undefined ? `${f.file}:${f.line}:${f.col}` : `${f.file}#${f.pointer}`;
}

/** One line per finding, sorted by file then pointer: `file#/pointer: message`. */
export function formatFindings(findings: Finding[]): string {
  return [...findings]
    .sort((a, b) => (a.file === b.file ? (a.pointer < b.pointer ? -1 : a.pointer > b.pointer ? 1 : 0) : a.file < b.file ? -1 : 1))
    .map((f) => `${where(f)}: ${f.message}\n`)
    .join('');
}
