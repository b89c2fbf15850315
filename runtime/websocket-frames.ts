// Where WebSocket frames begin, in bytes relayed through a tunnel (runtime/websocket.ts), so that
// the gateway can end a tunnel it closes itself (a revoked certificate, --websocket-idle-timeout,
// a drain) with a close frame at a frame boundary, not in the middle of one (RFC 6455 5.5.1;
// docs/security.md section 57). Headers only: a frame's payload is counted past, never buffered
// or unmasked. A control frame may come between the fragments of a message (RFC 6455 5.4), so
// any frame boundary will do.

/** The longest frame header: 2 bytes, a 64-bit length, a masking key. */
const MAX_HEADER = 14;

/** Follows the frame boundaries of one direction of a tunnel. */
export class FrameBoundaries {
  /** Payload bytes of the current frame still to come. */
  private remaining = 0;
  /** A header split across chunks: its bytes so far. */
  private readonly header = Buffer.alloc(MAX_HEADER);
  private headerLength = 0;

  /** Between two frames: a close frame written now is a frame of its own. */
  get atBoundary(): boolean {
    return this.remaining === 0 && this.headerLength === 0;
  }

  /**
   * Follows `chunk`. With `stopAtBoundary`, stops at the first frame boundary in it and returns
   * its offset (0: before the chunk's first byte; chunk.length: after its last); otherwise, or
   * when no boundary comes in it, reads it all and returns -1.
   */
  follow(chunk: Buffer, stopAtBoundary = false): number {
    const n = chunk.length;
    let i = 0;
    for (;;) {
      if (this.remaining > 0) {
        const skip = Math.min(this.remaining, n - i);
        i += skip;
        this.remaining -= skip;
        if (this.remaining > 0) return -1;
      }
      if (this.headerLength === 0 && stopAtBoundary) return i;
      if (i === n) return -1;
      // A header whole in this chunk (nearly always): read where it stands.
      if (this.headerLength === 0 && n - i >= 2) {
        const size = headerSize(chunk[i + 1]);
        if (n - i >= size) {
          this.remaining = payloadLength(chunk, i, chunk[i + 1] & 0x7f);
          i += size;
          continue;
        }
      }
      // A header split across chunks: its bytes are kept until it is whole. Its length is known
      // from its second byte on.
      let need = this.headerSize();
      while (this.headerLength < need && i < n) {
        this.header[this.headerLength++] = chunk[i++];
        if (this.headerLength === 2) need = this.headerSize();
      }
      if (this.headerLength < need) return -1;
      this.remaining = payloadLength(this.header, 0, this.header[1] & 0x7f);
      this.headerLength = 0;
    }
  }

  /** The kept header's size, as far as its bytes so far tell. */
  private headerSize(): number {
    return this.headerLength < 2 ? 2 : headerSize(this.header[1]);
  }
}

/** A header's size from its second byte: the length's 7 bits (126: 16 more, 127: 64 more) and the mask bit (a 4-byte key). */
function headerSize(second: number): number {
  const length7 = second & 0x7f;
  return 2 + (length7 === 126 ? 2 : length7 === 127 ? 8 : 0) + (second & 0x80 ? 4 : 0);
}

/** The payload length of the header at `at` whose 7-bit length is `length7`. */
function payloadLength(bytes: Buffer, at: number, length7: number): number {
  if (length7 < 126) return length7;
  if (length7 === 126) return bytes.readUInt16BE(at + 2);
  // 64 bits: beyond 2^53 no boundary will come within the bound anyway.
  const high = bytes.readUInt32BE(at + 2);
  return high >= 0x200000 ? Number.MAX_SAFE_INTEGER : high * 2 ** 32 + bytes.readUInt32BE(at + 6);
}

/**
 * The status codes the gateway closes a tunnel with (RFC 6455 7.4.1): 1008 when it refuses the
 * tunnel now (its certificate revoked, its key removed: policy), 1001 when it goes away (idle
 * timeout, drain). Envoy and NGINX close such tunnels without a frame (1006 at the client).
 */
export const CLOSE_POLICY_VIOLATION = 1008;
export const CLOSE_GOING_AWAY = 1001;

/** A close frame's payload: the code and a reason of at most 123 bytes (RFC 6455 5.5). */
function closePayload(code: number, reason: string): Buffer {
  const text = Buffer.from(reason).subarray(0, 123);
  const payload = Buffer.alloc(2 + text.length);
  payload.writeUInt16BE(code, 0);
  text.copy(payload, 2);
  return payload;
}

/** A close frame from the server side (to the client): unmasked. */
export function serverCloseFrame(code: number, reason: string): Buffer {
  const payload = closePayload(code, reason);
  return Buffer.concat([Buffer.from([0x88, payload.length]), payload]);
}

/** A close frame from the client side (to the upstream): masked with `maskKey` (4 random bytes, RFC 6455 5.3). */
export function clientCloseFrame(code: number, reason: string, maskKey: Buffer): Buffer {
  const payload = closePayload(code, reason);
  for (let i = 0; i < payload.length; i++) payload[i] ^= maskKey[i & 3];
  return Buffer.concat([Buffer.from([0x88, 0x80 | payload.length]), maskKey, payload]);
}
