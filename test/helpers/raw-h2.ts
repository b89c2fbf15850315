// An HTTP/2 client that writes frames itself, over real TLS (ALPN h2): unlike node:http2's
// client it sends what the test says, when the test says, whatever the server's SETTINGS
// allow. It is the attacker of test/security-http2-streams.test.ts: streams beyond
// SETTINGS_MAX_CONCURRENT_STREAMS, and streams opened and reset at once ("rapid reset",
// CVE-2023-44487). Header blocks are HPACK without the dynamic table or Huffman coding
// (RFC 7541 6.1 and 6.2.2), which every decoder reads.
// rawHttp2Request sends one request of any fields (test/security-edges-*): what node:http2's
// client refuses to send, such as two copies of a field it calls single-valued (two `host`, two
// `authorization`) or a request without `:authority`; the header block is HPACK literals without
// indexing, names and values as given, and the answer is read back as status, DATA and reset.
import { connect, type TLSSocket } from 'node:tls';
import type { TestPki } from './gateway-fixtures.ts';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
export const FRAME = { DATA: 0, HEADERS: 1, PRIORITY: 2, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 } as const;
export const END_STREAM = 0x1;
export const END_HEADERS = 0x4;
const PADDED = 0x8;
const ACK = 0x1;
/** RFC 9113 7: error codes. */
export const H2_ERROR = { NO_ERROR: 0, PROTOCOL_ERROR: 1, INTERNAL_ERROR: 2, REFUSED_STREAM: 7, CANCEL: 8, ENHANCE_YOUR_CALM: 11 } as const;

/** One frame (RFC 9113 4.1): the floods of test/security-http2-floods.test.ts write them directly. */
export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

function cancel(streamId: number): Buffer {
  const code = Buffer.alloc(4);
  code.writeUInt32BE(H2_ERROR.CANCEL);
  return frame(FRAME.RST_STREAM, 0, streamId, code);
}

/** An HPACK string literal, not Huffman-coded (RFC 7541 5.2), shorter than 127 bytes. */
function literal(text: string): Buffer {
  const bytes = Buffer.from(text, 'latin1');
  if (bytes.length >= 127) throw new Error('raw-h2 writes header values shorter than 127 bytes only');
  return Buffer.concat([Buffer.from([bytes.length]), bytes]);
}

/** An HPACK integer with an N-bit prefix (RFC 7541 5.1), the prefix's other bits 0. */
function hpackInteger(value: number, prefixBits: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [value];
  const out = [max];
  let rest = value - max;
  while (rest >= 128) {
    out.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return out;
}

function hpackString(text: string): Buffer {
  const bytes = Buffer.from(text, 'latin1');
  return Buffer.concat([Buffer.from(hpackInteger(bytes.length, 7)), bytes]);
}

/** Each field as a literal without indexing, with a literal name: nothing of it is interpreted by the encoder. */
export function headerBlock(fields: Array<[string, string]>): Buffer {
  return Buffer.concat(fields.flatMap(([name, value]) => [Buffer.from([0]), hpackString(name), hpackString(value)]));
}

// HPACK's static table entries 8-14 are ":status" with these values; the Huffman codes of the digits (RFC 7541 B).
const STATIC_STATUS: Record<number, number> = { 8: 200, 9: 204, 10: 206, 11: 304, 12: 400, 13: 404, 14: 500 };
const DIGIT_CODES: Record<string, string> = {
  '00000': '0',
  '00001': '1',
  '00010': '2',
  '011001': '3',
  '011010': '4',
  '011011': '5',
  '011100': '6',
  '011101': '7',
  '011110': '8',
  '011111': '9',
};

/** The status an answer's header block starts with (nghttp2 puts :status first), or 0. */
function statusOf(block: Buffer): number {
  const first = block[0];
  if (first & 0x80) return STATIC_STATUS[first & 0x7f] ?? 0;
  // A literal whose name is static entry 8 (":status"): with indexing 0x48, without 0x08, never 0x18.
  if ((first & 0x3f) !== 8 && (first & 0x0f) !== 8) return 0;
  const huffman = (block[1] & 0x80) !== 0;
  const value = block.subarray(2, 2 + (block[1] & 0x7f));
  if (!huffman) return Number(value.toString('latin1'));
  let bits = '';
  for (const byte of value) bits += byte.toString(2).padStart(8, '0');
  let digits = '';
  for (let code = ''; bits.length > 0 && digits.length < 3; bits = bits.slice(1)) {
    code += bits[0];
    if (DIGIT_CODES[code] !== undefined) {
      digits += DIGIT_CODES[code];
      code = '';
    }
  }
  return Number(digits);
}

/** :method, :scheme https, :path, :authority: static-table indices 2/3, 7, 4 (name), 1 (name). */
export function requestBlock(method: 'GET' | 'POST', path: string, authority: string): Buffer {
  return Buffer.concat([
    Buffer.from([method === 'GET' ? 0x82 : 0x83, 0x87]),
    Buffer.from([0x04]), // literal without indexing, name :path
    literal(path),
    Buffer.from([0x01]), // literal without indexing, name :authority
    literal(authority),
  ]);
}

export interface RawH2Options {
  port: number;
  ca: string;
  cert?: string;
  key?: string;
}

/** What the server sent, as it arrives. */
export interface RawH2 {
  socket: TLSSocket;
  /** The server's SETTINGS (identifier -> value), once they came. */
  settings: Map<number, number>;
  /** Streams the server answered with HEADERS. */
  answered: Set<number>;
  /** Streams the server reset, with its error code. */
  resets: Map<number, number>;
  /** Each answered stream's status (its first HEADERS), and its DATA as text. */
  statuses: Map<number, number>;
  bodies: Map<number, string>;
  /** Streams the server ended (END_STREAM on its HEADERS or DATA). */
  ended: Set<number>;
  /** The GOAWAY's error code, once one came. */
  goaway: number | null;
  /** The GOAWAY's last stream id: the highest stream the server took (RFC 9113 6.8). */
  goawayLastStream: number | null;
  closed: boolean;
  /** Opens stream `id` (odd, rising): HEADERS, ending the stream for GET, not for POST. */
  open(id: number, method: 'GET' | 'POST', path: string): void;
  /** Opens stream `id` with these fields in this order (pseudo-headers first, repeats as given); `body`: one DATA frame. */
  send(id: number, fields: Array<[string, string]>, body?: string): void;
  /** Opens stream `id` (a POST: a body would follow) and resets it in the same write. */
  openAndReset(id: number, path: string): void;
  /** RST_STREAM(CANCEL) for stream `id`. */
  reset(id: number): void;
  /** Resolves when everything written so far has been handed to the kernel. */
  flushed(): Promise<void>;
  close(): void;
}

export function rawH2(opts: RawH2Options): Promise<RawH2> {
  const authority = `localhost:${opts.port}`;
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: opts.port, servername: 'localhost', ALPNProtocols: ['h2'], ca: opts.ca, cert: opts.cert, key: opts.key });
    const client: RawH2 = {
      socket,
      settings: new Map(),
      answered: new Set(),
      resets: new Map(),
      statuses: new Map(),
      bodies: new Map(),
      ended: new Set(),
      goaway: null,
      goawayLastStream: null,
      closed: false,
      open(id, method, path) {
        socket.write(frame(FRAME.HEADERS, END_HEADERS | (method === 'GET' ? END_STREAM : 0), id, requestBlock(method, path, authority)));
      },
      send(id, fields, body) {
        const head = frame(FRAME.HEADERS, END_HEADERS | (body === undefined ? END_STREAM : 0), id, headerBlock(fields));
        socket.write(body === undefined ? head : Buffer.concat([head, frame(FRAME.DATA, END_STREAM, id, Buffer.from(body))]));
      },
      openAndReset(id, path) {
        socket.write(Buffer.concat([frame(FRAME.HEADERS, END_HEADERS, id, requestBlock('POST', path, authority)), cancel(id)]));
      },
      reset: (id) => socket.write(cancel(id)),
      flushed: () => new Promise((r) => socket.write(Buffer.alloc(0), () => r())),
      close: () => socket.destroy(),
    };
    let pending: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (pending.length >= 9) {
        const length = pending.readUIntBE(0, 3);
        if (pending.length < 9 + length) break;
        const type = pending[3];
        const flags = pending[4];
        const id = pending.readUInt32BE(5) & 0x7fffffff;
        let payload = pending.subarray(9, 9 + length);
        pending = pending.subarray(9 + length);
        if (flags & PADDED && (type === FRAME.DATA || type === FRAME.HEADERS)) payload = payload.subarray(1, payload.length - payload[0]);
        if (type === FRAME.SETTINGS && (flags & ACK) === 0) {
          for (let i = 0; i + 6 <= payload.length; i += 6) client.settings.set(payload.readUInt16BE(i), payload.readUInt32BE(i + 2));
          socket.write(frame(FRAME.SETTINGS, ACK, 0));
        } else if (type === FRAME.PING && (flags & ACK) === 0) socket.write(frame(FRAME.PING, ACK, 0, payload));
        else if (type === FRAME.HEADERS) {
          client.answered.add(id);
          if (!client.statuses.has(id)) client.statuses.set(id, statusOf(payload));
        } else if (type === FRAME.DATA) client.bodies.set(id, (client.bodies.get(id) ?? '') + payload.toString('utf8'));
        else if (type === FRAME.RST_STREAM) client.resets.set(id, payload.readUInt32BE(0));
        if ((type === FRAME.DATA || type === FRAME.HEADERS) && flags & END_STREAM) client.ended.add(id);
        if (type === FRAME.GOAWAY) {
          client.goaway = payload.readUInt32BE(4);
          client.goawayLastStream = payload.readUInt32BE(0) & 0x7fffffff;
        }
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => (client.closed = true));
    socket.once('secureConnect', () => {
      if (socket.alpnProtocol !== 'h2') return reject(new Error(`ALPN chose ${socket.alpnProtocol}, not h2`));
      // Our SETTINGS: empty (defaults), then a large connection window so answers never stall.
      const increment = Buffer.alloc(4);
      increment.writeUInt32BE(0x3fffffff);
      socket.write(Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0), frame(FRAME.WINDOW_UPDATE, 0, 0, increment)]));
      resolve(client);
    });
    socket.once('error', reject);
  });
}

export interface RawHttp2Answer {
  status: number;
  body: string;
  /** RST_STREAM's error code for stream 1, or null. */
  reset: number | null;
}

/** One request on stream 1 of a connection of its own, its fields in this order (pseudo-headers first); `body`: one DATA frame. */
export async function rawHttp2Request(pki: TestPki, port: number, fields: Array<[string, string]>, body?: string): Promise<RawHttp2Answer> {
  const client = await rawH2({ port, ca: pki.ca.certPem });
  client.send(1, fields, body);
  const deadline = Date.now() + 10_000;
  // A GOAWAY: our side ends too, and what the server sent before its close is read.
  while (!client.ended.has(1) && !client.resets.has(1) && !client.closed && Date.now() < deadline) {
    if (client.goaway !== null && client.socket.writable) client.socket.end();
    await new Promise((r) => setTimeout(r, 5));
  }
  client.close();
  return { status: client.statuses.get(1) ?? 0, body: client.bodies.get(1) ?? '', reset: client.resets.get(1) ?? null };
}
