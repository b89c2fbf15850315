// The one path normaliser: the form of a request path the gateway routes on (runtime/route.ts)
// and that a listen_path must already be in to be reached (compiler/listen-path.ts). Envoy's
// normalize_path, merge_slashes and path_with_escaped_slashes_action=REJECT are the reference:
//   - percent-encoded unreserved characters (ALPHA DIGIT - . _ ~) are decoded, other escapes
//     kept with upper-case hex (RFC 3986 6.2.2); a malformed escape is refused;
//   - runs of "/" are merged into one;
//   - "." and ".." segments are resolved (RFC 3986 5.2.4).
// Refused (a PathFault: 400 request.bad_path at the gateway, a compile error for a listen_path),
// because an upstream could read them otherwise:
//   - an encoded "/" or "\" (%2F, %5C) and a literal "\";
//   - ";" (path parameters: "/admin;x/y" is "/admin/y" to some servers);
//   - "#" (a URL parser ends the path there);
//   - a control character, encoded (%00-%1F, %7F: a C backend stops at NUL, CR/LF split log
//     lines) or raw, a raw space, and a raw byte beyond ASCII (HTTP/2 carries them);
//   - percent-encoded bytes that are not UTF-8 ("%C0%AE": an overlong "." to an old decoder);
//   - an escaped code point that is a look-alike of punctuation, space or a control to a
//     folding reader (common/path-lookalikes.ts);
//   - ".." climbing above the root;
//   - a segment of only dots and spaces other than "." and ".." ("..%20", "..."): trimmed,
//     it is "", "." or "..", depending on the reader.
// What depends on the APIs a path could name (".." leaving an API, trailing dots, case and
// compatibility folding) is routing's: runtime/route.ts.

import { hexValue, isLookalike } from './path-lookalikes.ts';

/** Why a path is refused. */
export type PathFaultKind =
  /** A raw control character, space, byte beyond ASCII, "\", ";" or "#". */
  | 'raw'
  /** "%" not followed by two hex digits. */
  | 'malformed-escape'
  /** An escaped control character, "/" or "\". */
  | 'escaped'
  /** Escaped bytes that are not UTF-8. */
  | 'not-utf8'
  /** An escaped look-alike of punctuation, a space or a control. */
  | 'lookalike'
  /** A ".." segment above the root. */
  | 'above-root'
  /** A segment of only dots and spaces, other than "." and "..". */
  | 'dots-and-spaces';

/** A refused path: why, and where in it (the offending character or escape, the first escape of a UTF-8 sequence; -1 for a segment's fault). */
export interface PathFault {
  fault: PathFaultKind;
  at: number;
}

export interface NormalPath {
  path: string;
  /** The number of segments before the first dot segment (-1: none). */
  firstDot: number;
  /** The normalised path before the first dot segment ("/" when none). */
  before: string;
}

/** RFC 3986 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~". */
function isUnreserved(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 45 || c === 46 || c === 95 || c === 126;
}

/**
 * The path with unreserved escapes decoded and the others upper-cased, or the first fault from
 * the left among those of the list at the top of this file that need no segments. Slashes and
 * dot segments are left as they are.
 */
export function normaliseEscapes(raw: string): string | PathFault {
  let decoded = '';
  // The UTF-8 sequence the escaped bytes are in: continuation bytes still expected, and the
  // range the next one must fall in (narrower after E0, ED, F0, F4: no overlong form, no
  // surrogate, nothing above U+10FFFF; Unicode 15 table 3-7).
  let need = 0;
  let low = 0x80;
  let high = 0xbf;
  /** The code point the sequence makes, so far, and where its first escape stands. */
  let cp = 0;
  let start = 0;
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c !== 37 /* % */) {
      if (need !== 0 || c <= 0x20 || c >= 0x7f || c === 92 /* \\ */ || c === 59 /* ; */ || c === 35 /* # */) {
        return need !== 0 ? { fault: 'not-utf8', at: start } : { fault: 'raw', at: i };
      }
      decoded += raw[i];
      continue;
    }
    const hi = hexValue(raw.charCodeAt(i + 1));
    const lo = hexValue(raw.charCodeAt(i + 2));
    if (hi < 0 || lo < 0) return { fault: 'malformed-escape', at: i };
    const byte = hi * 16 + lo;
    if (need !== 0) {
      if (byte < low || byte > high) return { fault: 'not-utf8', at: start };
      cp = (cp << 6) | (byte & 0x3f);
      need--;
      low = 0x80;
      high = 0xbf;
      // Here, before dot segments are resolved: "/x/%EF%BC%8F/../admin" is "/x///../admin" to a folding reader.
      if (need === 0 && isLookalike(cp)) return { fault: 'lookalike', at: start };
    } else if (byte >= 0x80) {
      start = i;
      if (byte >= 0xc2 && byte <= 0xdf) {
        need = 1;
        cp = byte & 0x1f;
      } else if (byte >= 0xe0 && byte <= 0xef) {
        need = 2;
        cp = byte & 0x0f;
        if (byte === 0xe0) low = 0xa0;
        else if (byte === 0xed) high = 0x9f;
      } else if (byte >= 0xf0 && byte <= 0xf4) {
        need = 3;
        cp = byte & 0x07;
        if (byte === 0xf0) low = 0x90;
        else if (byte === 0xf4) high = 0x8f;
      } else return { fault: 'not-utf8', at: i }; // a continuation byte alone, C0/C1 (overlong ASCII), F5-FF
    } else if (byte < 0x20 || byte === 0x7f || byte === 0x2f || byte === 0x5c) return { fault: 'escaped', at: i };
    decoded += isUnreserved(byte) ? String.fromCharCode(byte) : `%${raw.slice(i + 1, i + 3).toUpperCase()}`;
    i += 2;
  }
  if (need !== 0) return { fault: 'not-utf8', at: start };
  return decoded;
}

/**
 * Decodes unreserved escapes, upper-cases the others, merges slashes, resolves dot segments; a
 * PathFault for what an upstream could read otherwise (the list at the top of this file).
 */
export function normalisePath(raw: string): NormalPath | PathFault {
  const decoded = normaliseEscapes(raw);
  if (typeof decoded !== 'string') return decoded;
  const segments = decoded.split('/');
  const out: string[] = [];
  let firstDot = -1;
  let before = '/';
  for (let i = 1; i < segments.length; i++) {
    const seg = segments[i];
    const last = i === segments.length - 1;
    if (seg === '' && !last) continue; // merged slashes
    if (seg === '.' || seg === '..') {
      if (firstDot === -1) {
        firstDot = out.length;
        before = '/' + out.join('/') + (out.length > 0 ? '/' : '');
      }
      if (seg === '..') {
        if (out.length === 0) return { fault: 'above-root', at: -1 };
        out.pop();
      }
      // "/a/b/.." is the directory "/a/": keep the trailing slash.
      if (last) out.push('');
      continue;
    }
    if (onlyDotsAndSpaces(seg)) return { fault: 'dots-and-spaces', at: -1 };
    out.push(seg);
  }
  return { path: '/' + out.join('/'), firstDot, before };
}

/** "...", "..%20", "%20": trimmed as Windows trims, nothing is left, or "." / ".." is. */
export function onlyDotsAndSpaces(seg: string): boolean {
  if (seg === '') return false;
  for (let i = 0; i < seg.length; ) {
    if (seg.charCodeAt(i) === 46 /* . */) i++;
    else if (seg.startsWith('%20', i)) i += 3;
    else return false;
  }
  return true;
}

/** The path with trailing dots and spaces removed from every segment ("/admin.%20/x" -> "/admin/x"): what Windows reads. */
export function withoutTrailingDotsAndSpaces(path: string): string {
  return path.replace(/(?:\.|%20)+(?=\/|$)/g, '');
}
