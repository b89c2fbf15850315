// The host a request names, from its Host header (HTTP/2: :authority) or else the TLS server
// name: lower-cased, without the port and without the root dot, as routing compares it.
// A header that is not `host[:port]` is refused (section 37 of docs/security.md): it goes
// upstream as X-Forwarded-Host, the gateway's own header, which upstreams build links from.

/**
 * What hostOf returns for a Host (or :authority) that is not `host[:port]`: the route stage
 * refuses the request (request.bad_host). No host holds a NUL.
 */
export const BAD_HOST = '\u0000bad host';

/**
 * How hostOf treats each ASCII character of a host: a DNS name's (letters, digits, "-", ".",
 * "_", "~": RFC 3986 unreserved), an upper-case one of them, or none. The rest of RFC 3986's
 * reg-name (sub-delims, "%") and userinfo ("@") name no host a client means: "a.example:1@evil"
 * is "evil" to a URL parser, "a.example/x" a path, "a.example, evil" two hosts (section 37).
 */
const HOST_NAME = 1;
const HOST_UPPER = 2;
const HOST_CLASS = (() => {
  const table = new Uint8Array(128);
  for (let c = 97; c <= 122; c++) table[c] = HOST_NAME;
  for (let c = 48; c <= 57; c++) table[c] = HOST_NAME;
  for (const ch of '-._~') table[ch.charCodeAt(0)] = HOST_NAME;
  for (let c = 65; c <= 90; c++) table[c] = HOST_UPPER;
  return table;
})();

/**
 * "Host: Example.COM:8443" -> "example.com"; "[::1]:8443" -> "[::1]"; the fully qualified
 * "example.com." is "example.com" (the same host, and the same APIs). BAD_HOST for what is not
 * a DNS name or IP literal, with an optional port of digits: the header goes upstream as
 * X-Forwarded-Host, which an upstream builds links from. One table load per character (the
 * scan that found upper case before).
 */
export function hostOf(hostHeader: string | undefined, sni: string): string {
  if (hostHeader === undefined || hostHeader === '') return withoutRootDot(sni);
  const n = hostHeader.length;
  let end = 0;
  let upper = false;
  if (hostHeader.charCodeAt(0) === 91 /* [ */) {
    // An IP literal: hex digits, ":" and "." (an IPv4 tail) between brackets.
    for (end = 1; end < n; end++) {
      const c = hostHeader.charCodeAt(end);
      if (c === 93 /* ] */) break;
      if (c >= 65 && c <= 70) upper = true;
      else if (!((c >= 48 && c <= 58) || (c >= 97 && c <= 102) || c === 46)) return BAD_HOST;
    }
    if (end === n || end === 1) return BAD_HOST;
    end++;
  } else {
    for (; end < n; end++) {
      const c = hostHeader.charCodeAt(end);
      if (c === 58 /* : */) break;
      const kind = c < 128 ? HOST_CLASS[c] : 0;
      if (kind === HOST_UPPER) upper = true;
      else if (kind !== HOST_NAME) return BAD_HOST;
    }
    if (end === 0) return BAD_HOST;
  }
  if (end < n) {
    // ":" and the port: digits only (none is allowed: RFC 3986 port = *DIGIT).
    if (hostHeader.charCodeAt(end) !== 58 || n - end > 6) return BAD_HOST;
    for (let i = end + 1; i < n; i++) {
      const c = hostHeader.charCodeAt(i);
      if (c < 48 || c > 57) return BAD_HOST;
    }
  }
  if (end > 1 && hostHeader.charCodeAt(end - 1) === 46 /* . */) end--;
  const host = end === n ? hostHeader : hostHeader.slice(0, end);
  return upper ? host.toLowerCase() : host;
}

export function withoutRootDot(host: string): string {
  return host.length > 1 && host.charCodeAt(host.length - 1) === 46 /* . */ ? host.slice(0, -1) : host;
}
