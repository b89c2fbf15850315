// One HTTP/2 request written frame by frame over TLS, for what node:http2's client refuses to
// send: two copies of a field it calls single-valued (two `host`, two `authorization`), a request
// without `:authority`. The header block is HPACK literals without indexing, names and values
// as given (RFC 7541 6.2.2), so any list of fields goes out as it is. What comes back: the
// status (the first field of the answer's header block) and the DATA of stream 1.
import { connect as tlsConnect } from 'node:tls';
import type { TestPki } from './gateway-fixtures.ts';

const PREFACE = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';
const DATA = 0;
const HEADERS = 1;
const RST_STREAM = 3;
const SETTINGS = 4;
const GOAWAY = 7;
const END_STREAM = 1;
const END_HEADERS = 4;
const PADDED = 8;
const ACK = 1;

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
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

export interface RawHttp2Answer {
  status: number;
  body: string;
  /** RST_STREAM's error code for stream 1, or null. */
  reset: number | null;
}

/** One request on stream 1 of a connection of its own, its fields in this order (pseudo-headers first); `body`: one DATA frame. */
export async function rawHttp2Request(pki: TestPki, port: number, fields: Array<[string, string]>, body?: string): Promise<RawHttp2Answer> {
  const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ca: pki.ca.certPem, ALPNProtocols: ['h2'] });
  await new Promise((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
  });
  const answer: RawHttp2Answer = { status: 0, body: '', reset: null };
  const done = new Promise<void>((resolve) => {
    let got = Buffer.alloc(0);
    const timer = setTimeout(() => socket.destroy(), 10_000);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      while (got.length >= 9) {
        const length = got.readUIntBE(0, 3);
        if (got.length < 9 + length) break;
        const [type, flags] = [got[3], got[4]];
        const stream = got.readUInt32BE(5) & 0x7fffffff;
        let payload = got.subarray(9, 9 + length);
        got = got.subarray(9 + length);
        if (type === SETTINGS && !(flags & ACK)) socket.write(frame(SETTINGS, ACK, 0, Buffer.alloc(0)));
        if (type === GOAWAY) socket.end();
        if (stream !== 1) continue;
        if (flags & PADDED && (type === DATA || type === HEADERS)) payload = payload.subarray(1, payload.length - payload[0]);
        if (type === HEADERS && answer.status === 0) answer.status = statusOf(payload);
        if (type === DATA) answer.body += payload.toString('utf8');
        if (type === RST_STREAM) answer.reset = payload.readUInt32BE(0);
        if (type === RST_STREAM || ((type === DATA || type === HEADERS) && flags & END_STREAM)) socket.end();
      }
    });
  });
  socket.write(
    Buffer.concat([
      Buffer.from(PREFACE, 'latin1'),
      frame(SETTINGS, 0, 0, Buffer.alloc(0)),
      frame(HEADERS, END_HEADERS | (body === undefined ? END_STREAM : 0), 1, headerBlock(fields)),
      ...(body === undefined ? [] : [frame(DATA, END_STREAM, 1, Buffer.from(body))]),
    ]),
  );
  await done;
  return answer;
}
