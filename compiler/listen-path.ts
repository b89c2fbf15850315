// A listen_path the gateway can route to. The gateway routes on the request's normalised path
// (runtime/route.ts: unreserved escapes decoded, other escapes upper-cased, slashes merged,
// dot segments resolved, raw non-ASCII and spaces never seen raw) and compares it with the
// listen paths as the bundle holds them. A listen path that is not itself in that form, such as
// "/café/", "/%7euser/", "/a//b/", can never match a request: the API would answer 404 for
// ever and nothing would say why. The compiler says so, and shows the form that matches.
// test/compiler-listen-path checks this verdict against the runtime's normaliser.

import { isLookalike } from '../common/path-lookalikes.ts';

export type ListenPathVerdict = { ok: true } | { ok: false; reason: string; write?: string };

/** RFC 3986 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~". */
const UNRESERVED = /^[A-Za-z0-9._~-]$/;

const REFUSED_RAW: Record<string, string> = {
  ';': '";" (path parameters)',
  '\\': '"\\"',
  '#': '"#"',
  '?': '"?" (a query string)',
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

/** The escapes of `path` decoded where unreserved and upper-cased otherwise, or why the gateway refuses every path holding them. */
function normalEscapes(path: string): { text: string } | { refused: string } {
  let text = '';
  let utf8: number[] = [];
  const endRun = (): string | undefined => {
    if (utf8.length === 0) return undefined;
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(utf8));
    } catch {
      return `the escapes ${utf8.map(hex).join('')} are not UTF-8`;
    }
    const lookalike = lookalikeIn(utf8);
    if (lookalike !== undefined)
      return `the escapes ${utf8.map(hex).join('')} (U+${lookalike.toString(16).toUpperCase().padStart(4, '0')}, read as punctuation by a folding reader)`;
    text += utf8.map(hex).join('');
    utf8 = [];
    return undefined;
  };
  for (let i = 0; i < path.length; i++) {
    const ch = path[i];
    if (ch !== '%') {
      const bad = endRun();
      if (bad) return { refused: bad };
      const code = ch.charCodeAt(0);
      if (code < 0x20 || code === 0x7f) return { refused: 'a control character' };
      if (REFUSED_RAW[ch]) return { refused: REFUSED_RAW[ch] };
      text += ch;
      continue;
    }
    const pair = path.slice(i + 1, i + 3);
    if (!/^[0-9A-Fa-f]{2}$/.test(pair)) return { refused: `a malformed escape "${path.slice(i, i + 3)}"` };
    const byte = Number.parseInt(pair, 16);
    i += 2;
    if (byte >= 0x80) {
      utf8.push(byte);
      continue;
    }
    const bad = endRun();
    if (bad) return { refused: bad };
    if (byte < 0x20 || byte === 0x7f) return { refused: `an escaped control character (${hex(byte)})` };
    if (byte === 0x2f || byte === 0x5c) return { refused: `an escaped "${String.fromCharCode(byte)}" (${hex(byte)})` };
    const decoded = String.fromCharCode(byte);
    text += UNRESERVED.test(decoded) ? decoded : hex(byte);
  }
  const bad = endRun();
  return bad ? { refused: bad } : { text };
}

/** A code point a folding reader takes for punctuation, a space or a control: refused in every path (common/path-lookalikes.ts). */
function lookalikeIn(bytes: number[]): number | undefined {
  for (const ch of new TextDecoder().decode(Uint8Array.from(bytes))) {
    const cp = ch.codePointAt(0) as number;
    if (isLookalike(cp)) return cp;
  }
  return undefined;
}

/** Whether requests can ever reach an API on `listenPath` (which starts with "/"), and the form that would. */
export function listenPathVerdict(listenPath: string): ListenPathVerdict {
  const encoded = encodeRaw(listenPath);
  if (encoded === undefined) return { ok: false, reason: 'holds a lone surrogate, which no request path can carry' };
  const escapes = normalEscapes(encoded);
  if ('refused' in escapes) {
    return { ok: false, reason: `holds ${escapes.refused}, which the gateway refuses in every request path (400 request.bad_path)` };
  }
  const segments: string[] = [];
  for (const segment of escapes.text.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') return { ok: false, reason: 'holds a ".." segment, which the gateway resolves before routing' };
    if (/^(\.|%20)+$/.test(segment)) {
      return {
        ok: false,
        reason: `holds the segment "${segment}" of only dots and spaces, which the gateway refuses in every request path (400 request.bad_path)`,
      };
    }
    if (/(\.|%20)$/.test(segment)) {
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
