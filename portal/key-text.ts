// What a portal key file's text says before it is parsed (portal/key-index.ts). While the
// index reads its files after a start it holds every file's text before it has parsed them all
// (the parse is ~85% of the read); a page asked meanwhile parses only the texts that can matter
// to it. Each test below is a necessary condition, never a guess: a file it passes over cannot be
// the owner's, cannot be waiting for approval, cannot be among the newest. So the page is exact.
//
// Why the text suffices: without a backslash (a double-quoted escape), YAML writes a string's
// characters as they are, except that a space may be folded into a line break (plain, quoted and
// `>` scalars) and a `'` is doubled in single quotes. Tags, anchors and aliases (`*a`) name a
// scalar written elsewhere in the same file; comments are kept verbatim.
import { compareText } from './key-file.ts';

/** A file's text the index keeps while it is not parsed yet; what it says is worked out when first asked (the read itself asks nothing). */
export class KeyText {
  private pending: boolean | undefined;
  private bound: string | undefined;

  constructor(
    /** inode, size and mtime of the file when it was read. */
    readonly stamp: string,
    readonly text: string,
  ) {}

  /** Whether the file may hold a key waiting for approval (mayBePending). */
  get mayBePending(): boolean {
    this.pending ??= mayBePending(this.text);
    return this.pending;
  }

  /** No key of the file was requested later than this (newestBound). */
  get newestBound(): string {
    this.bound ??= newestBound(this.text);
    return this.bound;
  }
}

/**
 * A test that passes every text whose key `owner` may own. A subject of printable ASCII without
 * spaces or `'` (UUIDs, numbers, `auth0|...`, emails) must appear as a whole scalar (between a
 * space, line break, quote, `:` or flow indicator and one of those): `dev-70` does not name
 * `dev-7`. Any other subject: each run of it between spaces, quotes and backslashes must appear
 * (a subject of only those: every text passes). A text with a backslash always passes.
 */
export function mayBeOwnedBy(owner: string): (text: string) => boolean {
  if (/^[\x21-\x26\x28-\x7e]+$/.test(owner)) {
    const whole = new RegExp(`(?:^|[\\s"'\\[{,:])${escapeRegExp(owner)}(?:$|[\\s"',:\\]}])`, 'm');
    return (text) => text.includes('\\') || (text.includes(owner) && whole.test(text));
  }
  // \s holds the line breaks YAML 1.2 folds, and U+2028/2029 (1.1); U+0085 (1.1) is added.
  const runs = owner.split(/[\s\u0085'"\\]+/).filter((run) => run !== '');
  return (text) => text.includes('\\') || runs.every((run) => text.includes(run));
}

/**
 * Whether the text may hold a key waiting for approval (`is_inactive: true`): it names
 * `is_inactive` somewhere other than in a line `... is_inactive: false` (every approved key's
 * line), or has a backslash (a key name escaped in double quotes).
 */
function mayBePending(text: string): boolean {
  return text.includes('\\') || /is_inactive(?!: false\r?$)/m.test(text);
}

/**
 * The latest request time the file's key can have: its `portal-requested:` comment line is read
 * as `portal-requested: (\S+)` (portal/key-file.ts), so it is one of the words after such a
 * text, or '' (none). Compared as the pages sort (compareText).
 */
function newestBound(text: string): string {
  let bound = '';
  for (const m of text.matchAll(/portal-requested: (\S+)/g)) if (compareText(m[1]!, bound) > 0) bound = m[1]!;
  return bound;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
