// `.mtlsgateignore` (at the top of the config directory) and `--exclude PATTERN`: paths the
// compiler does not read, in gitignore syntax, so a config directory can share a repository
// with a docker-compose file or Kubernetes manifests. Supported: comments (#), negation (!),
// a trailing "/" for directories only, a leading or inner "/" anchoring the pattern to the
// config directory (otherwise it matches at any depth), *, ?, [a-z] and **. As in git, a
// file inside an ignored directory cannot be re-included (the directory is never listed).
import { join } from 'node:path';
import { RE2JS } from 're2js';
import { readRegularFile } from '../common/regular-file.ts';

export const IGNORE_FILE = '.mtlsgateignore';
/** An ignore file larger than this is not one. */
const MAX_IGNORE_FILE_BYTES = 1024 * 1024;

interface Rule {
  negate: boolean;
  dirOnly: boolean;
  regex: RE2JS;
  source: string;
}

function escapeChar(c: string): string {
  return /[\\^$.*+?()[\]{}|/]/.test(c) ? `\\${c}` : c;
}

/**
 * A glob's bracket expression (the text between [ and ]) as a regex class, every character taken
 * literally but a leading "!" or "^" (negation) and the "-" of a range. As in git, a range written
 * backwards ("z-a") matches nothing, and no class matches "/".
 */
function classToRegex(body: string): string {
  const chars = [...body];
  const negate = chars[0] === '!' || chars[0] === '^';
  if (negate) chars.shift();
  const lit = (c: string) => (/[\\\][^-]/.test(c) ? `\\${c}` : c);
  let members = '';
  for (let i = 0; i < chars.length; i++) {
    let c = chars[i]!;
    if (c === '\\' && i + 1 < chars.length) c = chars[++i]!;
    if (chars[i + 1] === '-' && i + 2 < chars.length) {
      let j = i + 2;
      let d = chars[j]!;
      if (d === '\\' && j + 1 < chars.length) d = chars[++j]!;
      if (c.codePointAt(0)! <= d.codePointAt(0)!) members += `${lit(c)}-${lit(d)}`;
      i = j;
    } else members += lit(c);
  }
  if (negate) return `[^/${members}]`;
  // Nothing left (only backward ranges): a class that matches no character.
  return members === '' ? '[^\\x00-\\x{10FFFF}]' : `[${members}]`;
}

/** A gitignore glob (already stripped of "!", leading and trailing "/") as a regex body. */
function globToRegex(glob: string): string {
  let re = '';
  let i = 0;
  while (i < glob.length) {
    if (glob.startsWith('**/', i) && (i === 0 || glob[i - 1] === '/')) {
      re += '(?:.*/)?';
      i += 3;
    } else if (glob.startsWith('/**', i) && i + 3 === glob.length) {
      re += '/.*';
      i += 3;
    } else if (glob.startsWith('**', i)) {
      re += '.*';
      i += 2;
    } else if (glob[i] === '*') {
      re += '[^/]*';
      i++;
    } else if (glob[i] === '?') {
      re += '[^/]';
      i++;
    } else if (glob[i] === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end === -1) {
        re += '\\[';
        i++;
        continue;
      }
      re += classToRegex(glob.slice(i + 1, end));
      i = end + 1;
    } else if (glob[i] === '\\' && i + 1 < glob.length) {
      re += escapeChar(glob[i + 1]);
      i += 2;
    } else {
      re += escapeChar(glob[i]);
      i++;
    }
  }
  return re;
}

/** One line of an ignore file (or one --exclude value) as a rule; null for blanks and comments. */
function parseRule(line: string): Rule | null {
  let text = line.replace(/\r$/, '');
  if (text === '' || text.startsWith('#')) return null;
  text = text.replace(/(?<!\\)\s+$/, '');
  if (text === '') return null;
  let negate = false;
  if (text.startsWith('!')) {
    negate = true;
    text = text.slice(1);
  } else if (text.startsWith('\\!') || text.startsWith('\\#')) text = text.slice(1);
  const dirOnly = text.endsWith('/');
  if (dirOnly) text = text.replace(/\/+$/, '');
  const anchored = text.includes('/');
  text = text.replace(/^\//, '');
  if (text === '') return null;
  const body = globToRegex(text);
  // RE2 (re2js), like allowed_urls: matching is linear in the path whatever the pattern. With
  // a backtracking RegExp, "a**a**a**a**a**a**a**a**a**a**a**b" held `check` for minutes on one
  // path of 80 characters, and a .mtlsgateignore arrives in a pull request like any config file.
  return { negate, dirOnly, regex: RE2JS.compile(anchored ? `^${body}$` : `^(?:.*/)?${body}$`), source: line };
}

export class IgnoreRules {
  private constructor(private readonly rules: Rule[]) {}

  static from(lines: Iterable<string>): IgnoreRules {
    const rules: Rule[] = [];
    for (const l of lines) {
      const r = parseRule(l);
      if (r) rules.push(r);
    }
    return new IgnoreRules(rules);
  }

  /** The config directory's .mtlsgateignore (if any), then the --exclude patterns (they win). */
  static forDir(root: string, exclude: readonly string[] = []): IgnoreRules {
    let fileLines: string[] = [];
    try {
      fileLines = readRegularFile(join(root, IGNORE_FILE), MAX_IGNORE_FILE_BYTES).toString('utf8').split('\n');
    } catch (err) {
      // No ignore file: nothing ignored but what --exclude names. One that cannot be read
      // (a named pipe, a directory, unreadable) is not taken as empty: files meant to be
      // ignored would be read.
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw new Error(`${IGNORE_FILE} cannot be read: ${code ?? (err as Error).message}`);
    }
    return IgnoreRules.from([...fileLines, ...exclude]);
  }

  get empty(): boolean {
    return this.rules.length === 0;
  }

  /** `path`: relative to the config directory, "/" separators. The last matching rule decides. */
  ignores(path: string, isDir: boolean): boolean {
    let ignored = false;
    for (const r of this.rules) {
      if (r.dirOnly && !isDir) continue;
      if (r.regex.matches(path)) ignored = !r.negate;
    }
    return ignored;
  }
}
