// `.mtlsgateignore` (at the top of the config directory) and `--exclude PATTERN`: paths the
// compiler does not read, in gitignore syntax, so a config directory can share a repository
// with a docker-compose file or Kubernetes manifests. Supported: comments (#), negation (!),
// a trailing "/" for directories only, a leading or inner "/" anchoring the pattern to the
// config directory (otherwise it matches at any depth), *, ?, [a-z] and **. As in git, a
// file inside an ignored directory cannot be re-included (the directory is never listed).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const IGNORE_FILE = '.mtlsgateignore';

interface Rule {
  negate: boolean;
  dirOnly: boolean;
  regex: RegExp;
  source: string;
}

function escapeChar(c: string): string {
  return /[\\^$.*+?()[\]{}|/]/.test(c) ? `\\${c}` : c;
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
      let body = glob.slice(i + 1, end).replace(/\\/g, '\\\\');
      if (body.startsWith('!')) body = `^${body.slice(1)}`;
      re += `[${body}]`;
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
export function parseRule(line: string): Rule | null {
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
  return { negate, dirOnly, regex: new RegExp(anchored ? `^${body}$` : `^(?:.*/)?${body}$`), source: line };
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
      fileLines = readFileSync(join(root, IGNORE_FILE), 'utf8').split('\n');
    } catch {
      // No ignore file: nothing ignored but what --exclude names.
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
      if (r.regex.test(path)) ignored = !r.negate;
    }
    return ignored;
  }
}
