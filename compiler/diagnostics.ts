// Diagnostics and the log every stage writes them into. Stages never throw on bad config: they
// report and carry on, so one run shows every problem.
import { visibleText } from '../common/visible-text.ts';
import { CODES, type Code } from './codes.ts';
import { positionOf, type SourceFile } from './source.ts';

export type Severity = 'error' | 'warning';

export interface Related {
  file: string;
  line: number;
  col: number;
  message: string;
}

export interface Diagnostic {
  code: string;
  severity: Severity;
  /** Path relative to the config directory, with "/" separators. */
  file: string;
  /** 1-based. */
  line: number;
  col: number;
  message: string;
  related?: Related[];
}

/** A place in a source file: the file and a UTF-16 offset into its text. */
export interface Site {
  file: SourceFile;
  offset: number;
}

/**
 * At most this many diagnostics of one file are kept; the rest are counted in one more at the
 * first not kept. A 7 MB file of one key written a million times made a million
 * E_YAML_DUPLICATE_KEY (1.8 GB, 13 s, 12 MB of output and a million annotations), and 64 MiB of
 * it ended `check` out of memory; a PEM of 10,000 copies of a certificate made 10,000 warnings.
 */
export const MAX_DIAGNOSTICS_PER_FILE = 1_000;

/** The one diagnostic that stands for those of a file past MAX_DIAGNOSTICS_PER_FILE. */
interface Overflow {
  diagnostic: Diagnostic;
  /** What the first diagnostic not shown said (the first error's, once one is not shown). */
  first: string;
  errors: number;
  warnings: number;
}

export class DiagnosticLog {
  readonly diagnostics: Diagnostic[] = [];
  /** Diagnostics reported per file (kept or not), and the overflow of files past the bound. */
  private readonly perFile = new Map<string, number>();
  private readonly overflow = new Map<string, Overflow>();
  constructor(private readonly strict: boolean) {}

  private add(d: Diagnostic): void {
    const n = (this.perFile.get(d.file) ?? 0) + 1;
    this.perFile.set(d.file, n);
    if (n <= MAX_DIAGNOSTICS_PER_FILE) {
      this.diagnostics.push(d);
      return;
    }
    let o = this.overflow.get(d.file);
    if (o === undefined) {
      const { related: _, ...plain } = d;
      o = { diagnostic: plain, first: `${d.code} ${d.message}`, errors: 0, warnings: 0 };
      this.overflow.set(d.file, o);
      this.diagnostics.push(o.diagnostic);
    }
    // The exit status must say error when any diagnostic not shown is one: the first error not
    // shown takes the place.
    if (d.severity === 'error' && o.errors++ === 0) {
      Object.assign(o.diagnostic, { code: d.code, severity: 'error', line: d.line, col: d.col });
      o.first = `${d.code} ${d.message}`;
    } else if (d.severity !== 'error') o.warnings++;
    o.diagnostic.message = `${o.errors} more errors and ${o.warnings} more warnings in this file are not shown (at most ${MAX_DIAGNOSTICS_PER_FILE} a file are kept); the first here: ${o.first}`;
  }

  report(code: Code, site: Site, message: string, related?: { site: Site; message: string }[]): void {
    const severity = this.severityOf(code);
    const { line, col } = positionOf(site.file, site.offset);
    const d: Diagnostic = { code, severity, file: site.file.path, line, col, message: visibleText(message) };
    if (related?.length) {
      d.related = related.map((r) => ({ file: r.site.file.path, ...positionOf(r.site.file, r.site.offset), message: visibleText(r.message) }));
    }
    this.add(d);
  }

  /** For a position already known as line/col (the YAML parser's errors, encoding errors). */
  reportAt(code: Code, file: string, line: number, col: number, message: string): void {
    this.add({ code, severity: this.severityOf(code), file, line, col, message: visibleText(message) });
  }

  /** Forgets every diagnostic after the first `count` (a compile that starts its stages again). */
  truncate(count: number): void {
    this.diagnostics.length = count;
    // Counted again from what is kept (an overflow still kept keeps its counts).
    const kept = new Set(this.diagnostics);
    for (const [file, o] of this.overflow) if (!kept.has(o.diagnostic)) this.overflow.delete(file);
    this.perFile.clear();
    for (const d of this.diagnostics) this.perFile.set(d.file, (this.perFile.get(d.file) ?? 0) + 1);
  }

  /** --strict: every warning is an error (CI can fail on an expiring certificate). */
  private severityOf(code: Code): Severity {
    return this.strict ? 'error' : CODES[code].severity;
  }

  /** Sorted by file, line, col, then code (stable, so output is deterministic). */
  sorted(): Diagnostic[] {
    return [...this.diagnostics].sort(
      (a, b) =>
        (a.file < b.file ? -1 : a.file > b.file ? 1 : 0) ||
        a.line - b.line ||
        a.col - b.col ||
        (a.code < b.code ? -1 : a.code > b.code ? 1 : 0) ||
        (a.message < b.message ? -1 : a.message > b.message ? 1 : 0),
    );
  }
}
