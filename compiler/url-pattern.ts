// allowed_urls patterns, as the runtime will run them: RE2 syntax (re2js), which matches in
// time linear in the path. A backtracking engine let `^/users/([a-z0-9]+)+/profile$` and a
// 29-character path block the event loop for 3 s; RE2 has no backreferences or lookarounds,
// so such patterns are refused here, with the position of the construct RE2 cannot run.
import { RE2JS } from 're2js';

export type PatternProblem = { index: number; message: string };

/** Why RE2 cannot run `source` (and where, 0-based), or null when it can. */
export function re2Problem(source: string): PatternProblem | null {
  try {
    RE2JS.compile(source);
    return null;
  } catch (err) {
    const e = err as { error?: string; input?: string | null; message: string };
    const what = e.error ?? e.message;
    const fragment = e.input ?? '';
    let index = fragment === '' ? 0 : source.indexOf(fragment);
    // The parser quotes the whole pattern for unbalanced parentheses: point at the culprit.
    if (what === 'missing closing )') index = source.lastIndexOf('(');
    else if (what === 'unexpected )') index = source.lastIndexOf(')');
    if (index < 0) index = 0;
    const hint = /Perl syntax|escape sequence/.test(what) ? ' (RE2 has no lookaround or backreferences: they can take exponential time)' : '';
    return { index, message: fragment && fragment !== source ? `${what} at \`${fragment.slice(0, 20)}\`${hint}` : `${what}${hint}` };
  }
}

/** Splits at top-level `|` (outside groups and classes, escapes skipped). */
function hasTopLevelAlternation(source: string): boolean {
  let depth = 0;
  let inClass = false;
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (c === '\\') i++;
    else if (inClass) inClass = c !== ']';
    else if (c === '[') inClass = true;
    else if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === '|' && depth === 0) return true;
  }
  return false;
}

/**
 * The anchored form of an unanchored pattern, or null when it is anchored at the start
 * already. An unanchored pattern matches anywhere in the path: `/public/` admits
 * `/admin/delete/public/`.
 */
export function anchoredForm(source: string): string | null {
  if (source.startsWith('^') || source.startsWith('\\A')) return null;
  return hasTopLevelAlternation(source) ? `^(?:${source})` : `^${source}`;
}
