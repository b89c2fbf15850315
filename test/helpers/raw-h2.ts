// An HTTP/2 client that writes frames itself, over real TLS (ALPN h2): unlike node:http2's
// client it sends what the test says, when the test says, whatever the server's SETTINGS
// allow. It is the attacker of test/security-http2-streams.test.ts: streams beyond
// SETTINGS_MAX_CONCURRENT_STREAMS, and streams opened and reset at once ("rapid reset",
// CVE-2023-44487). Header blocks are HPACK without the dynamic table or Huffman coding
// (RFC 7541 6.1 and 6.2.2), which every decoder reads.
import { connect, type TLSSocket } from 'node:tls';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8 } as const;
const END_STREAM = 0x1;
const END_HEADERS = 0x4;
const ACK = 0x1;
/** RFC 9113 7: error codes. */
export const H2_ERROR = { NO_ERROR: 0, PROTOCOL_ERROR: 1, INTERNAL_ERROR: 2, REFUSED_STREAM: 7, CANCEL: 8, ENHANCE_YOUR_CALM: 11 } as const;

function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
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

/** :method, :scheme https, :path, :authority: static-table indices 2/3, 7, 4 (name), 1 (name). */
function requestBlock(method: 'GET' | 'POST', path: string, authority: string): Buffer {
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
  /** The GOAWAY's error code, once one came. */
  goaway: number | null;
  /** The GOAWAY's last stream id: the highest stream the server took (RFC 9113 6.8). */
  goawayLastStream: number | null;
  closed: boolean;
  /** Opens stream `id` (odd, rising): HEADERS, ending the stream for GET, not for POST. */
  open(id: number, method: 'GET' | 'POST', path: string): void;
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
      goaway: null,
      goawayLastStream: null,
      closed: false,
      open(id, method, path) {
        socket.write(frame(FRAME.HEADERS, END_HEADERS | (method === 'GET' ? END_STREAM : 0), id, requestBlock(method, path, authority)));
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
        const payload = pending.subarray(9, 9 + length);
        pending = pending.subarray(9 + length);
        if (type === FRAME.SETTINGS && (flags & ACK) === 0) {
          for (let i = 0; i + 6 <= payload.length; i += 6) client.settings.set(payload.readUInt16BE(i), payload.readUInt32BE(i + 2));
          socket.write(frame(FRAME.SETTINGS, ACK, 0));
        } else if (type === FRAME.PING && (flags & ACK) === 0) socket.write(frame(FRAME.PING, ACK, 0, payload));
        else if (type === FRAME.HEADERS) client.answered.add(id);
        else if (type === FRAME.RST_STREAM) client.resets.set(id, payload.readUInt32BE(0));
        else if (type === FRAME.GOAWAY) {
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
