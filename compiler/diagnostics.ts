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

export class DiagnosticLog {
  readonly diagnostics: Diagnostic[] = [];
  constructor(private readonly strict: boolean) {}

  report(code: Code, site: Site, message: string, related?: { site: Site; message: string }[]): void {
    const severity = this.severityOf(code);
    const { line, col } = positionOf(site.file, site.offset);
    const d: Diagnostic = { code, severity, file: site.file.path, line, col, message: visibleText(message) };
    if (related?.length) {
      d.related = related.map((r) => ({ file: r.site.file.path, ...positionOf(r.site.file, r.site.offset), message: visibleText(r.message) }));
    }
    this.diagnostics.push(d);
  }

  /** For a position already known as line/col (the YAML parser's errors, encoding errors). */
  reportAt(code: Code, file: string, line: number, col: number, message: string): void {
    this.diagnostics.push({ code, severity: this.severityOf(code), file, line, col, message: visibleText(message) });
  }

  /** Forgets every diagnostic after the first `count` (a compile that starts its stages again). */
  truncate(count: number): void {
    this.diagnostics.length = count;
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
