// Reads the server name (SNI) from the first bytes of a TLS connection, before any TLS
// library sees them: the ClientHello is plaintext. RFC 8446 4.1.2 / RFC 5246 7.4.1.2 for the
// message, RFC 6066 3 for the server_name extension. Handles a ClientHello split over several
// records. Never throws: malformed input is NOT_TLS.

export const NEED_MORE = 0 as const;
export const NOT_TLS = 1 as const;
/** Largest ClientHello accepted (post-quantum key shares make them ~2 KB; 64 KB is generous). */
const MAX_HELLO = 65_536;
const MAX_RECORD = 16_384 + 2_048;

/** The lower-cased SNI host ("" without SNI), NEED_MORE, or NOT_TLS. */
export function readClientHello(buf: Buffer): string | typeof NEED_MORE | typeof NOT_TLS {
  const fragments: Buffer[] = [];
  let have = 0;
  let pos = 0;
  let needed = -1; // total handshake bytes (header + body) once the header is known
  while (needed === -1 || have < needed) {
    if (buf.length < pos + 5) return buf.length > MAX_HELLO + 5 * 64 ? NOT_TLS : NEED_MORE;
    if (buf[pos] !== 22 /* handshake */ || buf[pos + 1] !== 3) return NOT_TLS;
    const length = buf.readUInt16BE(pos + 3);
    if (length === 0 || length > MAX_RECORD) return NOT_TLS;
    if (buf.length < pos + 5 + length) return NEED_MORE;
    fragments.push(buf.subarray(pos + 5, pos + 5 + length));
    have += length;
    pos += 5 + length;
    if (needed === -1 && have >= 4) {
      const head = fragments.length === 1 ? fragments[0] : Buffer.concat(fragments);
      if (head[0] !== 1 /* client_hello */) return NOT_TLS;
      needed = 4 + ((head[1] << 16) | (head[2] << 8) | head[3]);
      if (needed > MAX_HELLO) return NOT_TLS;
    }
  }
  const hello = fragments.length === 1 ? fragments[0] : Buffer.concat(fragments);
  const sni = serverName(hello.subarray(4, needed));
  return sni === null ? NOT_TLS : sni;
}

/** The host_name in a ClientHello body, "" when absent, null when malformed. */
function serverName(body: Buffer): string | null {
  let p = 2 + 32; // legacy_version, random
  if (body.length < p + 1) return null;
  p += 1 + body[p]; // session id
  if (body.length < p + 2) return null;
  p += 2 + body.readUInt16BE(p); // cipher suites
  if (body.length < p + 1) return null;
  p += 1 + body[p]; // compression methods
  if (p === body.length) return ''; // no extensions
  if (body.length < p + 2) return null;
  const end = p + 2 + body.readUInt16BE(p);
  if (end > body.length) return null;
  p += 2;
  while (p + 4 <= end) {
    const type = body.readUInt16BE(p);
    const length = body.readUInt16BE(p + 2);
    p += 4;
    if (p + length > end) return null;
    if (type === 0 /* server_name */) {
      let q = p + 2; // server_name_list length
      const listEnd = p + length;
      while (q + 3 <= listEnd) {
        const nameType = body[q];
        const nameLength = body.readUInt16BE(q + 1);
        q += 3;
        if (q + nameLength > listEnd) return null;
        if (nameType === 0 /* host_name */) return body.toString('latin1', q, q + nameLength).toLowerCase();
        q += nameLength;
      }
      return '';
    }
    p += length;
  }
  return '';
}
