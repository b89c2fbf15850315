// A listen_path the gateway can route to. The gateway routes on the request's normalised path
// (common/path-normalise.ts: unreserved escapes decoded, other escapes upper-cased, slashes
// merged, dot segments resolved, raw non-ASCII and spaces never seen raw) and compares it with the
// listen paths as the bundle holds them. A listen path that is not itself in that form, such as
// "/café/", "/%7euser/", "/a//b/", can never match a request: the API would answer 404 for
// ever and nothing would say why. The compiler says so, and shows the form that matches.
// The escapes are judged by that same normaliser; test/compiler-listen-path checks this
// verdict against the runtime's router.

import { hexValue, isLookalike } from '../common/path-lookalikes.ts';
import { normaliseEscapes, onlyDotsAndSpaces, type PathFault, withoutTrailingDotsAndSpaces } from '../common/path-normalise.ts';

export type ListenPathVerdict = { ok: true } | { ok: false; reason: string; write?: string };

const REFUSED_RAW: Record<string, string> = {
  ';': '";" (path parameters)',
  '\\': '"\\"',
  '#': '"#"',
};

function hex(byte: number): string {
  return `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
}

/** Raw non-ASCII and spaces as a client sends them: percent-encoded UTF-8. */
function encodeRaw(path: string): string | undefined {
  let out = '';
  for (const ch of path) {
    const cp = ch.codePointAt(0) as number;
    if (cp >= 0xd800 && cp <= 0xdfff) return undefined; // a lone surrogate has no UTF-8 form
    out += cp > 0x7f || cp === 0x20 ? [...Buffer.from(ch, 'utf8')].map(hex).join('') : ch;
  }
  return out;
}

/** What the normaliser refused in `path`, in words: the character, the escape, or the run of escaped bytes. */
function described(path: string, { fault, at }: PathFault): string {
  const escaped = `%${path.slice(at + 1, at + 3).toUpperCase()}`;
  switch (fault) {
    case 'raw': {
      const code = path.charCodeAt(at);
      return code < 0x20 || code === 0x7f ? 'a control character' : (REFUSED_RAW[path[at]] ?? `a raw "${path[at]}"`);
    }
    case 'malformed-escape':
      return `a malformed escape "${path.slice(at, at + 3)}"`;
    case 'escaped':
      return escaped === '%2F' || escaped === '%5C'
        ? `an escaped "${String.fromCharCode(Number.parseInt(escaped.slice(1), 16))}" (${escaped})`
        : `an escaped control character (${escaped})`;
    case 'not-utf8':
      return `the escapes ${escapedRun(path, at).map(hex).join('')} are not UTF-8`;
    case 'lookalike': {
      const run = escapedRun(path, at);
      const cp = [...new TextDecoder().decode(Uint8Array.from(run))].map((ch) => ch.codePointAt(0) as number).find(isLookalike) ?? 0;
      return `the escapes ${run.map(hex).join('')} (U+${cp.toString(16).toUpperCase().padStart(4, '0')}, read as punctuation by a folding reader)`;
    }
    default:
      return fault;
  }
}

/** The bytes of the run of escapes beyond ASCII ("%C3%A9%E2%82%AC") that holds the escape at `at`. */
function escapedRun(path: string, at: number): number[] {
  const byteAt = (i: number): number => {
    const hi = path[i] === '%' ? hexValue(path.charCodeAt(i + 1)) : -1;
    const lo = hexValue(path.charCodeAt(i + 2));
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
  };
  let first = at;
  while (first >= 3 && byteAt(first - 3) >= 0x80) first -= 3;
  const run: number[] = [];
  for (let i = first; byteAt(i) >= 0x80; i += 3) run.push(byteAt(i));
  return run;
}

/** Whether requests can ever reach an API on `listenPath` (which starts with "/"), and the form that would. */
export function listenPathVerdict(listenPath: string): ListenPathVerdict {
  const encoded = encodeRaw(listenPath);
  if (encoded === undefined) return { ok: false, reason: 'holds a lone surrogate, which no request path can carry' };
  // A "?" starts the query string, which is not routed: what stands before it is judged first.
  const query = encoded.indexOf('?');
  const escapes = normaliseEscapes(query === -1 ? encoded : encoded.slice(0, query));
  if (typeof escapes !== 'string') {
    return { ok: false, reason: `holds ${described(encoded, escapes)}, which the gateway refuses in every request path (400 request.bad_path)` };
  }
  if (query !== -1) return { ok: false, reason: 'holds "?" (a query string), which the gateway refuses in every request path (400 request.bad_path)' };
  const segments: string[] = [];
  for (const segment of escapes.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') return { ok: false, reason: 'holds a ".." segment, which the gateway resolves before routing' };
    if (onlyDotsAndSpaces(segment)) {
      return {
        ok: false,
        reason: `holds the segment "${segment}" of only dots and spaces, which the gateway refuses in every request path (400 request.bad_path)`,
      };
    }
    if (withoutTrailingDotsAndSpaces(segment) !== segment) {
      return {
        ok: false,
        reason: `holds the segment "${segment}" ending in a dot or a space, which the gateway refuses in a request path when the path without them names no API or another (a reader that drops them, as Windows does, sees another path)`,
      };
    }
    segments.push(segment);
  }
  const normal = segments.length === 0 ? '/' : `/${segments.join('/')}/`;
  const given = listenPath.endsWith('/') ? listenPath : `${listenPath}/`;
  if (normal === given) return { ok: true };
  return { ok: false, reason: 'never matches a request: the gateway routes on the normalised request path', write: normal };
}
