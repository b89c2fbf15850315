// Diagnostics for people (text with code frames), for programs (json) and for GitHub Actions
// annotations (github). Paths are shown relative to the current directory when the config
// directory is inside it, so they can be clicked in a terminal and match a CI checkout.
import { readFileSync } from 'node:fs';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { CODES, type Code } from './codes.ts';
import { Confinement } from './confine.ts';
import type { Diagnostic } from './diagnostics.ts';
import { count } from '../common/count.ts';
import { visibleJson, visibleText } from '../common/visible-text.ts';

export type OutputFormat = 'text' | 'json' | 'github';

interface Counts {
  diagnostics: Diagnostic[];
  errorCount: number;
  warningCount: number;
}

/** The path to print for a file of the config directory `dir` (a file name's hidden characters as \uXXXX). */
export function displayPath(dir: string, file: string): string {
  const full = join(dir, file);
  if (!isAbsolute(dir)) return visibleText(full.split(sep).join('/'));
  const rel = relative(process.cwd(), full);
  return visibleText((rel.startsWith('..') || isAbsolute(rel) ? full : rel).split(sep).join('/'));
}

function codeFrame(lines: string[] | undefined, line: number, col: number): string {
  if (!lines || line < 1 || line > lines.length) return '';
  // The line as a diagnostic shows text: a bidi override or an escape sequence in a comment is
  // \uXXXX, and the caret moves past what its escapes add.
  const raw = lines[line - 1].replace(/\r$/, '').replace(/\t/g, ' ');
  const text = visibleText(raw);
  const caret = visibleText(raw.slice(0, Math.max(0, col - 1))).length;
  const gutter = String(line).length;
  return [`${' '.repeat(gutter + 2)}|`, ` ${line} | ${text}`, `${' '.repeat(gutter + 2)}| ${' '.repeat(caret)}^`].join('\n');
}

function formatText(result: Counts, dir: string): string {
  const sources = new Map<string, string[] | undefined>();
  // A code frame quotes a line of the file: never of one that resolves outside the directory
  // (an E_PATH_OUTSIDE symlink to a .env would otherwise print its first line).
  const inside = new Confinement(dir);
  const linesOf = (file: string) => {
    if (!sources.has(file)) {
      try {
        const abs = resolve(dir, file);
        if (!inside.check(abs).inside) throw new Error('outside the config directory');
        sources.set(file, readFileSync(abs, 'utf8').split('\n'));
      } catch {
        sources.set(file, undefined);
      }
    }
    return sources.get(file);
  };
  const out: string[] = [];
  for (const d of result.diagnostics) {
    const block = [`${displayPath(dir, d.file)}:${d.line}:${d.col}: ${d.severity} ${d.code}: ${d.message}`];
    const frame = codeFrame(linesOf(d.file), d.line, d.col);
    if (frame) block.push(frame);
    for (const r of d.related ?? []) block.push(`  note: ${displayPath(dir, r.file)}:${r.line}:${r.col}: ${r.message}`);
    const info = CODES[d.code as Code];
    if (info) block.push(`  help: ${info.fix}`);
    out.push(block.join('\n'));
  }
  if (result.errorCount + result.warningCount > 0) out.push(`${count(result.errorCount, 'error')}, ${count(result.warningCount, 'warning')}`);
  return out.length ? out.join('\n\n') + '\n' : '';
}

function escapeData(s: string): string {
  return s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}
function escapeProperty(s: string): string {
  return escapeData(s).replace(/:/g, '%3A').replace(/,/g, '%2C');
}

function formatGithub(result: Counts, dir: string): string {
  return result.diagnostics
    .map((d) => {
      const related = (d.related ?? []).map((r) => ` (${r.message} at ${displayPath(dir, r.file)}:${r.line}:${r.col})`).join('');
      return `::${d.severity} file=${escapeProperty(displayPath(dir, d.file))},line=${d.line},col=${d.col},title=${escapeProperty(d.code)}::${escapeData(d.message + related)}\n`;
    })
    .join('');
}

function formatJson(result: Counts, dir: string): string {
  const diagnostics = result.diagnostics.map((d) => ({
    ...d,
    file: displayPath(dir, d.file),
    ...(d.related ? { related: d.related.map((r) => ({ ...r, file: displayPath(dir, r.file) })) } : {}),
  }));
  return visibleJson(JSON.stringify({ errorCount: result.errorCount, warningCount: result.warningCount, diagnostics }, null, 2)) + '\n';
}

export function formatDiagnostics(result: Counts, format: OutputFormat, dir: string): string {
  if (format === 'json') return formatJson(result, dir);
  if (format === 'github') return formatGithub(result, dir);
  return formatText(result, dir);
}
