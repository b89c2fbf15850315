// One way for every command to say how it went, in the --format the user chose:
//   text    results on stdout, problems on stderr ("mtlsgate CMD: ...")
//   json    one envelope on stdout: {schema_version, mtlsgate, command, ok, ...result, errors, warnings}
//   github  like text, plus a workflow command per problem on stdout (annotations in Actions)
// The envelope's fields are a contract (docs/cli-conventions.md): new fields may be added, none renamed.
import { UsageError } from './command.ts';
import { displayPath } from '../compiler/format.ts';
import type { Diagnostic } from '../compiler/index.ts';
import { warn as sayWarning } from './output.ts';
import { VERSION } from '../runtime/version.ts';
import { visibleJson, visibleLines, visibleText } from '../common/visible-text.ts';

export type Format = 'text' | 'json' | 'github';
const FORMATS: readonly Format[] = ['text', 'json', 'github'];
/** Bumped only when a field of the envelope changes meaning or goes away. */
const CLI_SCHEMA_VERSION = 1;

export interface Problem {
  /** A stable word for scripts: "usage", "io", "not_a_certificate", a compiler code, ... */
  code: string;
  message: string;
  file?: string;
  line?: number;
  col?: number;
}

/** Compiler diagnostics of one severity as envelope problems (check, compile, approve): paths shown relative to `dir`. */
export function diagnosticProblems(ds: readonly Diagnostic[], severity: 'error' | 'warning', dir: string): Problem[] {
  return ds.filter((d) => d.severity === severity).map((d) => ({ code: d.code, message: d.message, file: displayPath(dir, d.file), line: d.line, col: d.col }));
}

/**
 * The output flags of every command that prints a result: --format, and --json for
 * --format json (what terraform's -json users type; -o is the output file, not kubectl's).
 */
export const FORMAT_OPTIONS = { format: { type: 'string' }, json: { type: 'boolean' } } as const;

/** Reads --format (and --json, its alias for json) into one of FORMATS, or one of `more` (who's csv). */
export function parseFormat<More extends string = never>(
  values: { format?: string | boolean; json?: string | boolean },
  more: readonly More[] = [],
): Format | More {
  if (values.json === true) return 'json';
  const f = values.format ?? 'text';
  const known: readonly string[] = [...FORMATS, ...more];
  if (typeof f !== 'string' || !known.includes(f)) {
    throw new UsageError(`--format must be ${known.slice(0, -1).join(', ')} or ${known[known.length - 1]}, not ${JSON.stringify(f)}`);
  }
  return f as Format | More;
}

/** True when argv asks for JSON (main uses it to answer even a usage error with an envelope). */
export function wantsJson(argv: readonly string[]): boolean {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--') break;
    if (argv[i] === '--json' || argv[i] === '--format=json' || (argv[i] === '--format' && argv[i + 1] === 'json')) return true;
  }
  return false;
}

export function envelope(command: string, ok: boolean, body: Record<string, unknown>, errors: Problem[] = [], warnings: Problem[] = []): string {
  // Subjects, file names and messages may hold hidden characters: escaped, the same JSON value.
  return `${visibleJson(JSON.stringify({ schema_version: CLI_SCHEMA_VERSION, mtlsgate: VERSION, command, ok, ...body, errors, warnings }, null, 2))}\n`;
}

function escapeData(s: string): string {
  return s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

function escapeProperty(s: string): string {
  return escapeData(s).replace(/:/g, '%3A').replace(/,/g, '%2C');
}

/** A GitHub Actions workflow command (::error / ::warning / ::notice) for one problem. */
export function githubLine(severity: 'error' | 'warning' | 'notice', p: Problem): string {
  const props = [
    p.file ? `file=${escapeProperty(visibleText(p.file))}` : '',
    p.line ? `line=${p.line}` : '',
    p.col ? `col=${p.col}` : '',
    `title=${escapeProperty(p.code)}`,
  ]
    .filter(Boolean)
    .join(',');
  return `::${severity} ${props}::${escapeData(visibleLines(p.message))}\n`;
}

/** Collects a command's problems and prints them (text/github) as they come; json prints at the end. */
export class Reporter {
  readonly errors: Problem[] = [];
  readonly warnings: Problem[] = [];
  constructor(
    readonly command: string,
    readonly format: Format,
  ) {}

  error(code: string, message: string, where: Omit<Problem, 'code' | 'message'> = {}): void {
    const p = { code, message, ...where };
    this.errors.push(p);
    if (this.format === 'json') return;
    process.stderr.write(`mtlsgate ${this.command}: ${visibleLines(message)}\n`);
    if (this.format === 'github') process.stdout.write(githubLine('error', p));
  }

  warning(code: string, message: string, where: Omit<Problem, 'code' | 'message'> = {}): void {
    const p = { code, message, ...where };
    this.warnings.push(p);
    if (this.format === 'json') return;
    sayWarning(`mtlsgate ${this.command}: warning: ${visibleLines(message)}`);
    if (this.format === 'github') process.stdout.write(githubLine('warning', p));
  }

  /** In json, the envelope (ok: no error reported, unless `ok` says otherwise); in text/github, nothing. */
  finish(body: Record<string, unknown> = {}, ok = this.errors.length === 0): void {
    if (this.format === 'json') process.stdout.write(envelope(this.command, ok, body, this.errors, this.warnings));
  }
}
