// The HTTP/2 transport: a node:http2 server fed TLS sockets that ALPN gave to h2. Requests use
// node:http2's compatibility API, whose req/res have the shape node:http's have, so they go
// through the same exchange (runtime/exchange.ts) and stages as HTTP/1.1: same codes, same log
// line. HTTP/2 specifics: the host comes from :authority (or SNI); a drain sends GOAWAY
// (session.close) instead of `Connection: close`, which HTTP/2 forbids.
//
// What one connection may hold (docs/security.md section 31): at most `maxStreams` streams open
// at once (SETTINGS_MAX_CONCURRENT_STREAMS; nghttp2 refuses more: REFUSED_STREAM before the
// client acknowledged the SETTINGS, GOAWAY after), header lists of HTTP/1.1's size, and a
// budget of streams the client resets before they are answered ("rapid reset",
// CVE-2023-44487): a connection that spends it gets GOAWAY(ENHANCE_YOUR_CALM) and is closed.
// So does one that sends PING, SETTINGS and PRIORITY frames faster than their own budget allows
// (section 62).
import { constants, createServer, type Http2ServerRequest, type Http2ServerResponse, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import { refusal } from './errors.ts';
import { arrivingExchange, ConnectionFacts, type HttpExchange, NO_CONNECTION, startExchange } from './exchange.ts';
import type { GatewayCore } from './gateway.ts';
import { HTTP2_PARSER_FIELDS, tooManyHttp2Fields } from './field-count.ts';
import { joinRepeatedFields } from './repeated-fields.ts';

/** An idle HTTP/2 connection is closed after this long, like an idle HTTP/1.1 keep-alive one. */
const SESSION_IDLE_MS = 65_000;

/**
 * `--http2-max-streams` default: RFC 9113 6.5.2 asks for no less than 100 so as not to limit
 * parallelism needlessly; Envoy recommends 100 at the edge, Apache httpd and h2o use 100,
 * nginx 128. gRPC and browser clients queue what goes beyond it.
 */
export const DEFAULT_HTTP2_MAX_STREAMS = 100;
/** The largest value SETTINGS_MAX_CONCURRENT_STREAMS can carry. */
export const HTTP2_MAX_STREAMS_LIMIT = 2 ** 32 - 1;

/**
 * A request's header list at most, in HPACK's measure (name + value + 32 per field): node:http's
 * 16 KiB for HTTP/1.1, instead of node:http2's 64 KiB, which a connection's 100 streams could
 * each hold. A larger list gets its stream reset (ENHANCE_YOUR_CALM) by node:http2.
 */
const MAX_HEADER_LIST_SIZE = 16 * 1024;

/**
 * Rapid reset, as Varnish counts it (h2_rapid_reset, h2_rapid_reset_limit, _period): a stream
 * the client resets less than a second after opening it, before the gateway answered, costs the
 * connection one of `--http2-max-resets` resets (default 100), refilled at that many per
 * `--http2-reset-period` (default 1 minute). nghttp2 (Node 20.20) only closes a connection after
 * 1,000 RST_STREAMs in a burst (then 33 a second), each of which the gateway has decided and
 * perhaps sent upstream first.
 */
const RAPID_RESET_MS = 1_000;
export const DEFAULT_HTTP2_MAX_RESETS = 100;
export const DEFAULT_HTTP2_RESET_PERIOD_MS = 60_000;
/**
 * The shortest `--http2-reset-period`: a reset counts only within RAPID_RESET_MS of its stream's
 * opening, so a budget refilled faster than that would be spent and back within the time one
 * reset takes to count: no budget at all.
 */
export const HTTP2_MIN_RESET_PERIOD_MS = RAPID_RESET_MS;

/**
 * PING, SETTINGS and PRIORITY frames a connection may send (section 62): a burst of 1,000, then
 * 100 a second. Browsers send a few of each per connection (Firefox a few PRIORITY frames per
 * page); gRPC clients ping for keepalive (seconds apart at the least) and to measure the
 * bandwidth-delay product while they receive (grpc-go: one per round trip while data comes), so a
 * PING that follows bytes the gateway wrote since the previous one costs nothing, as gRPC C-core
 * servers only count pings "without data". A flood (nghttp2 answers 260,000 a second, in C++,
 * while the other clients wait) spends it within milliseconds.
 */
const CONTROL_FRAME_BURST = 1_000;
const CONTROL_FRAMES_PER_MS = 100 / 1_000;
/** A PING's ACK, written for the one before (9-byte header, 8 bytes of payload): not bytes of an answer. */
const PING_ACK_BYTES = 17;

export interface Http2Limits {
  /** Streams open at once per connection (SETTINGS_MAX_CONCURRENT_STREAMS). */
  maxStreams: number;
  /** Rapid resets a connection may spend (`--http2-max-resets`, default 100, at least 1)... */
  maxResets?: number;
  /** ...refilled at that many per this many ms (`--http2-reset-period`, default 60,000). */
  resetPeriodMs?: number;
  /** A connection closed for resetting streams too fast (for /metrics). */
  onRapidReset?: () => void;
  /** A connection closed for spending its PING, SETTINGS and PRIORITY budget (for /metrics). */
  onControlFlood?: () => void;
}

export interface Http2Transport {
  accept(socket: TLSSocket): void;
  /** Graceful: GOAWAY to every session with no stream open (all of them while draining). */
  closeIdleConnections(): void;
  closeAll(): void;
}

/**
 * Per session: what its requests read of the connection (read once, when it starts), the streams
 * open (node:http2 does not count them) and the rapid-reset budget.
 */
interface SessionState {
  readonly session: ServerHttp2Session;
  readonly socket: TLSSocket;
  readonly facts: ConnectionFacts;
  open: number;
  resetBudget: number;
  /** performance.now() when the budget was last brought up to date. */
  budgetAt: number;
  /** The PING, SETTINGS and PRIORITY frames left (section 62), and when that was brought up to date. */
  controlBudget: number;
  controlAt: number;
  /** The socket's bytesWritten at the last PING: a PING after an answer's bytes is free. */
  writtenAtPing: number;
  /** performance.now() when its latest stream opened (its idle time, once a control frame refreshed node's timer). */
  lastStreamAt: number;
  /** Closed for rapid reset: streams still parsed from its last read are refused, not decided. */
  tripped: boolean;
}

/** A session's state, kept on the session: the request handler's one lookup. */
const STATE = Symbol('mtlsgate.http2Session');
/** On a stream: its session's state, and performance.now() when it opened (its session is gone by its 'close'). */
const STREAM_SESSION = Symbol('mtlsgate.streamSession');
const OPENED_AT = Symbol('mtlsgate.streamOpenedAt');
type StateHolder = { [STATE]?: SessionState };
type StreamMarks = { [STREAM_SESSION]: SessionState; [OPENED_AT]: number };

/** The session errors of a connection closed for rapid reset or a control-frame flood (its 'error' listener ignores them). */
const RAPID_RESET = new Error('HTTP/2 streams reset too fast');
const CONTROL_FLOOD = new Error('HTTP/2 PING, SETTINGS or PRIORITY frames sent too fast');

/**
 * The host header of an HTTP/2 request: :authority, else Host. Both, naming different hosts, are
 * two hosts, joined as HTTP/1.1 joins two Host lines, which hostOf refuses (request.bad_host):
 * RFC 9113 8.3.1 calls such a request malformed, and a proxy in front may have read the other
 * (section 40). One comparison, only when a client sends both (curl, browsers and gRPC send
 * :authority alone).
 */
export function authorityOf(authority: string | undefined, host: string | undefined): string | undefined {
  if (authority === undefined) return host;
  return host === undefined || host === authority ? authority : `${authority}, ${host}`;
}

export function createHttp2Transport(gateway: GatewayCore, limits: Http2Limits = { maxStreams: DEFAULT_HTTP2_MAX_STREAMS }): Http2Transport {
  const server = createServer({
    settings: { enablePush: false, maxConcurrentStreams: limits.maxStreams, maxHeaderListSize: MAX_HEADER_LIST_SIZE },
    // node:http2's own flood limits, at Node 20.20's defaults, pinned here because docs/security.md
    // (sections 31 and 51) and test/security-http2-floods.test.ts rely on them: invalid frames
    // (empty DATA frames without END_STREAM count) and streams refused per connection before it
    // is closed, SETTINGS entries per frame, unanswered PINGs the gateway may send, nghttp2's
    // memory per connection (MB). Fields per header list: above what 16 KiB can hold, so the
    // exchange answers a request over the field limit with 431 (runtime/field-count.ts, section 57).
    maxSessionInvalidFrames: 1000,
    maxSessionRejectedStreams: 100,
    maxHeaderListPairs: HTTP2_PARSER_FIELDS,
    maxSettings: 32,
    maxOutstandingPings: 10,
    maxSessionMemory: 10,
  });
  const sessions = new Map<ServerHttp2Session, SessionState>();
  const maxResets = limits.maxResets ?? DEFAULT_HTTP2_MAX_RESETS;
  const refillPerMs = maxResets / (limits.resetPeriodMs ?? DEFAULT_HTTP2_RESET_PERIOD_MS);

  /** Takes one rapid reset from the session's budget, refilled since it was last looked at; false when none is left. */
  function spendResetBudget(state: SessionState, now: number): boolean {
    state.resetBudget = Math.min(maxResets, state.resetBudget + (now - state.budgetAt) * refillPerMs);
    state.budgetAt = now;
    if (state.resetBudget < 1) return false;
    state.resetBudget--;
    return true;
  }

  /**
   * A stream closed (its 'close' listener, shared by every stream: no closure or once() wrapper
   * per stream): counts it off; a draining session whose last stream ended goes.
   */
  function streamClosed(this: ServerHttp2Stream): void {
    const state = (this as unknown as StreamMarks)[STREAM_SESSION];
    const session = state.session;
    if (!sessions.has(session)) return;
    state.open--;
    if (session.destroyed) return;
    // Draining: a session whose last stream just ended goes now, not at its idle timeout.
    if (state.open === 0 && gateway.draining) session.close();
  }

  /**
   * The client reset a stream before it was answered: charges a rapid reset to its session. Its
   * 'aborted' listener: node:http2 emits it synchronously while nghttp2 reads the RST_STREAM, where
   * 'close' comes only after the whole read was parsed (section 51). So the budget stops a flood
   * at the reset that spends it, and the streams later in the same read (a 64 KB read holds over
   * 1,000 HEADERS + RST_STREAM pairs) are not all made requests first, each decided by the
   * stages, with the event loop held for that whole read.
   */
  function streamAborted(this: ServerHttp2Stream): void {
    const marks = this as unknown as StreamMarks;
    const state = marks[STREAM_SESSION];
    const session = state.session;
    if (!sessions.has(session) || session.destroyed) return; // its streams close with it: no reset of the client's
    // Reset (not ended) before any answer: the client's reset, or nghttp2's for its malformed
    // request. The gateway resets streams only once it has answered (runtime/stream-reset.ts).
    if (this.rstCode === constants.NGHTTP2_NO_ERROR || this.headersSent) return;
    const now = performance.now();
    if (now - marks[OPENED_AT] >= RAPID_RESET_MS || spendResetBudget(state, now)) return;
    limits.onRapidReset?.();
    enhanceYourCalm(state, RAPID_RESET);
  }

  /** Closes a session that spent a budget: GOAWAY(ENHANCE_YOUR_CALM), then the socket. */
  function enhanceYourCalm(state: SessionState, error: Error): void {
    const session = state.session;
    state.tripped = true;
    sessions.delete(session);
    // GOAWAY first, on its own: destroy() alone sometimes closes the socket before its GOAWAY is
    // out. nghttp2 takes no new stream once it sent one.
    session.goaway(constants.NGHTTP2_ENHANCE_YOUR_CALM);
    setImmediate(() => session.destroy(error, constants.NGHTTP2_ENHANCE_YOUR_CALM));
  }

  /**
   * A PING, SETTINGS or PRIORITY frame came (section 62): one from the session's budget. Also
   * the session's idle timeout: node:http2 refreshes its timer at each such frame now that the
   * gateway listens for them, so a session with no stream open, whose last stream opened
   * SESSION_IDLE_MS ago, is closed here, as its timer would have closed it.
   */
  function controlFrame(state: SessionState): void {
    if (state.tripped) return;
    const now = performance.now();
    state.controlBudget = Math.min(CONTROL_FRAME_BURST, state.controlBudget + (now - state.controlAt) * CONTROL_FRAMES_PER_MS);
    state.controlAt = now;
    if (--state.controlBudget < 0) {
      limits.onControlFlood?.();
      return enhanceYourCalm(state, CONTROL_FLOOD);
    }
    if (state.open === 0 && now - state.lastStreamAt >= SESSION_IDLE_MS) state.session.close();
  }

  /** A PING: free when the gateway wrote more than ACKs since the previous one (gRPC's BDP pings while it receives). */
  function pingFrame(state: SessionState): void {
    const written = state.socket.bytesWritten;
    const answered = written - state.writtenAtPing > PING_ACK_BYTES;
    state.writtenAtPing = written;
    if (!answered || state.open === 0) controlFrame(state);
  }

  /** A PRIORITY frame on an open stream: node:http2 emits it on the stream, not the session (a shared listener, no closure per stream). */
  function streamPriority(this: ServerHttp2Stream): void {
    controlFrame((this as unknown as StreamMarks)[STREAM_SESSION]);
  }

  server.on('session', (session: ServerHttp2Session) => {
    // session.socket is a Proxy: read through it here, once, not per request.
    const socket = session.socket as TLSSocket;
    const now = performance.now();
    const state: SessionState = {
      session,
      socket,
      facts: ConnectionFacts.of(socket),
      open: 0,
      resetBudget: maxResets,
      budgetAt: now,
      controlBudget: CONTROL_FRAME_BURST,
      controlAt: now,
      writtenAtPing: 0,
      lastStreamAt: now,
      tripped: false,
    };
    (session as StateHolder)[STATE] = state;
    sessions.set(session, state);
    session.once('close', () => sessions.delete(session));
    session.on('stream', (stream: ServerHttp2Stream) => {
      state.open++;
      const marks = stream as unknown as StreamMarks;
      marks[STREAM_SESSION] = state;
      state.lastStreamAt = marks[OPENED_AT] = performance.now();
      stream.on('close', streamClosed);
      stream.on('aborted', streamAborted);
      stream.on('priority', streamPriority);
    });
    // Listening makes node:http2 call in for each of these frames (without, nghttp2 answers them
    // in C++ unseen): the budget's count. PRIORITY on a stream not open comes to the session.
    session.on('ping', () => pingFrame(state));
    session.on('remoteSettings', () => controlFrame(state));
    session.on('priority', () => controlFrame(state));
    session.on('error', () => {}); // a client's protocol error concerns its session only
    session.setTimeout(SESSION_IDLE_MS, () => session.close());
    if (gateway.draining) session.close();
  });

  const exchangeFor = (req: Http2ServerRequest, res: Http2ServerResponse): HttpExchange => {
    const facts = (req.stream.session as StateHolder | undefined)?.[STATE]?.facts ?? NO_CONNECTION;
    const tooMany = tooManyHttp2Fields(req.rawHeaders);
    const repeated = joinRepeatedFields(req.headers, req.rawHeaders);
    const ex = arrivingExchange(gateway, req, res, true, facts, authorityOf(req.headers[':authority'], req.headers.host), false);
    if (tooMany) ex.refusedAtArrival ??= refusal('request.too_many_fields');
    else if (repeated) ex.refusedAtArrival ??= refusal('request.field_repeated');
    return ex;
  };
  server.on('request', (req: Http2ServerRequest, res: Http2ServerResponse) => {
    // A stream parsed after its connection spent its rapid-reset budget, from the same read.
    if ((req.stream.session as StateHolder | undefined)?.[STATE]?.tripped === true) return void req.stream.close(constants.NGHTTP2_REFUSED_STREAM);
    startExchange(exchangeFor(req, res));
  });
  // CONNECT without :protocol (nghttp2 resets one with it: extended CONNECT is not offered):
  // node:http2 would answer a bare 405 itself, unlogged; the error table's row instead.
  server.on('connect', (req: Http2ServerRequest, res: Http2ServerResponse) => {
    const ex = exchangeFor(req, res);
    ex.refusedAtArrival = refusal('request.connect_not_allowed');
    startExchange(ex);
  });

  return {
    accept: (socket) => server.emit('connection', socket),
    closeIdleConnections() {
      for (const [session, state] of sessions) if (state.open === 0 || gateway.draining) session.close();
    },
    closeAll() {
      for (const session of sessions.keys()) session.destroy();
      sessions.clear();
    },
  };
}
