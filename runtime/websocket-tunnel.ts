// The bytes of an open WebSocket tunnel, copied both ways with backpressure (as pipe() copies
// them) while the frame boundaries of each direction are followed (runtime/websocket-frames.ts).
// When the gateway ends a tunnel itself (docs/security.md section 57), each side gets a close
// frame at the next frame boundary of the bytes going to it: the client an unmasked one, the
// upstream a masked one, as a client sends. Nothing more goes to a side after its close frame;
// the socket is ended (FIN after it) and the peer's own close frame, sent back, is dropped.
// A side whose frame is not done within CLOSE_BOUND_MS (a frame of many megabytes under way, a
// peer that reads nothing) is closed without one, and so is everything still open then.
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { clientCloseFrame, FrameBoundaries, serverCloseFrame } from './websocket-frames.ts';

/** From the gateway's decision to close a tunnel to its sockets' end, at most (ms). */
export const CLOSE_BOUND_MS = 1_000;

/** One direction of a tunnel: where its bytes go and where its frames begin. */
class Direction {
  readonly frames = new FrameBoundaries();
  /** Its close frame, once the gateway closes the tunnel: written at the next boundary. */
  closeFrame: Buffer | null = null;
  /** The close frame went out (or the direction was given up on): its bytes are dropped. */
  done = false;
  private waitingForDrain = false;

  constructor(
    private readonly from: Duplex,
    private readonly to: Duplex,
  ) {}

  /** A chunk on its way: copied, or cut at the boundary where the close frame goes. */
  take(chunk: Buffer): void {
    if (this.done) return;
    if (this.closeFrame === null) {
      this.frames.follow(chunk);
      this.write(chunk);
      return;
    }
    const at = this.frames.follow(chunk, true);
    if (at < 0) return this.write(chunk);
    if (at > 0) this.to.write(chunk.subarray(0, at));
    this.sendClose();
  }

  /** Closing: the close frame goes now if the bytes are between two frames, else at the next boundary. */
  close(frame: Buffer): void {
    if (this.done || this.closeFrame !== null) return;
    this.closeFrame = frame;
    if (this.frames.atBoundary) this.sendClose();
  }

  private sendClose(): void {
    this.done = true;
    this.from.resume(); // what follows is read and dropped, not left to fill the buffers
    if (this.to.destroyed) return;
    this.to.write(this.closeFrame!);
    this.to.end();
  }

  private write(chunk: Buffer): void {
    if (this.to.write(chunk) || this.waitingForDrain) return;
    this.waitingForDrain = true;
    this.from.pause();
    this.to.once('drain', () => {
      this.waitingForDrain = false;
      if (!this.done) this.from.resume();
    });
  }
}

export class TunnelRelay {
  private readonly toClient: Direction;
  private readonly toUpstream: Direction;
  private closing: NodeJS.Timeout | null = null;

  constructor(
    private readonly client: Duplex,
    private readonly upstream: Socket,
    /** Closes both sockets, now (the tunnel's end). */
    private readonly destroy: () => void,
  ) {
    this.toClient = new Direction(upstream, client);
    this.toUpstream = new Direction(client, upstream);
  }

  /** Starts copying: `upstreamHead`, `clientHead`: bytes read past the handshake on either side. */
  start(upstreamHead: Buffer, clientHead: Buffer): void {
    if (upstreamHead.length > 0) this.toClient.take(upstreamHead);
    if (clientHead.length > 0) this.toUpstream.take(clientHead);
    // The upstream socket's own listeners went with node:http's client at the 101: an error
    // (a reset) ends the tunnel instead of reaching the process unheard.
    this.upstream.on('error', this.destroy);
    this.upstream.on('data', (chunk: Buffer) => this.toClient.take(chunk));
    this.client.on('data', (chunk: Buffer) => this.toUpstream.take(chunk));
    // A side that ends its half ends the other's, as pipe() does (a close handshake the peers do themselves).
    this.upstream.on('end', () => {
      if (!this.toClient.done) this.client.end();
    });
    this.client.on('end', () => {
      if (!this.toUpstream.done) this.upstream.end();
    });
  }

  /** The gateway closes the tunnel: a close frame with `code` and `reason` to each side, at its next frame boundary. */
  close(code: number, reason: string): void {
    if (this.closing !== null) return;
    this.closing = setTimeout(this.destroy, CLOSE_BOUND_MS);
    this.toClient.close(serverCloseFrame(code, reason));
    this.toUpstream.close(clientCloseFrame(code, reason, randomBytes(4)));
  }

  /** Both sockets closed: the timer is not needed any more. */
  ended(): void {
    if (this.closing !== null) clearTimeout(this.closing);
  }

  /** A socket closed: the tunnel ends now, unless the gateway is closing it and the other side's close frame may still be on its way. */
  get closingGracefully(): boolean {
    return this.closing !== null;
  }
}
