// A connection node:cluster was handing to a worker at the instant the worker died. The
// round-robin scheduler (Node 20.20, lib/internal/cluster/round_robin_handle.js,
// RoundRobinHandle.prototype.handoff) takes an accepted connection off its queue and sends it
// to a free worker with a callback for the worker's reply ({ ack: seq, accepted }; the worker
// sends it before it reads a byte: lib/internal/cluster/child.js onconnection): accepted, the
// primary closes its copy of the socket; not accepted (the worker is shutting down),
// distribute() hands it to another worker. A worker that dies before it replies never replies:
// the callback (lib/internal/cluster/utils.js `callbacks`) keeps the primary's copy open for
// good, and RoundRobinHandle.prototype.remove, run when the worker is gone, forgets the worker
// but not that socket. The client waits for its own timeout (docs/workers.md).
//
// The guard sees the handoffs through the worker's public ChildProcess.send() (node:cluster
// calls it with { cmd: 'NODE_CLUSTER', act: 'newconn', seq } and the socket) and the replies on
// its 'internalMessage' event. Once the worker has exited and its channel has been read to the
// end (a reply it sent is read before the end; none can come after), each handoff without a
// reply is answered for it the way Node answers for a worker shutting down: "not accepted", so
// the round-robin hands the connection to a live worker. With no worker left to take it (all
// gone, or the set stopping), the primary's copy is closed instead: the client sees the
// connection end at once and can retry. Node's internal message shape is the contract here; a
// Node that changes it sends no message the guard recognises, and the guard does nothing.
import cluster, { type Worker } from 'node:cluster';

interface ClusterMessage {
  cmd?: unknown;
  act?: unknown;
  seq?: unknown;
  ack?: unknown;
}
/** A libuv handle (TCP) as node:cluster passes it: close() frees the primary's copy. */
type SocketHandle = { close(): void };

/** How long after a worker's exit its channel may still hold replies to read (ms); then the handoffs without one are closed. */
const CHANNEL_END_WAIT_MS = 2_000;

export interface HandoffGuardOptions {
  /** Another worker listens and the set is not stopping: a lost connection can be handed to it. */
  canRedirect(): boolean;
  /** `count` connections handed to the dead worker and never taken: handed on (`redirected`) or closed. */
  onOrphans(count: number, redirected: boolean): void;
}

export function guardHandoffs(w: Worker, opts: HandoffGuardOptions): void {
  const unanswered = new Map<number, SocketHandle>();
  const child = w.process;
  const send = child.send.bind(child) as (...args: unknown[]) => boolean;
  child.send = ((...args: unknown[]) => {
    const [message, handle] = args as [ClusterMessage | null, SocketHandle | undefined];
    if (handle !== undefined && message?.cmd === 'NODE_CLUSTER' && message.act === 'newconn' && typeof message.seq === 'number')
      unanswered.set(message.seq, handle);
    return send(...args);
  }) as typeof child.send;
  child.on('internalMessage', (m: ClusterMessage | null) => {
    if (m?.cmd === 'NODE_CLUSTER' && typeof m.ack === 'number') unanswered.delete(m.ack);
  });
  w.once('exit', () => {
    const exitedAt = Date.now();
    const settle = () => {
      // `connected` turns false once the channel's end is read, after every reply before it.
      if (child.connected && Date.now() - exitedAt < CHANNEL_END_WAIT_MS) return void setTimeout(settle, 10).unref();
      if (unanswered.size === 0) return;
      // Node has dropped the worker from every round-robin handle once it is out of
      // cluster.workers (removeWorker runs after removeHandlesForWorker), so the "not accepted"
      // reply cannot hand the connection back to it.
      const redirect = !child.connected && cluster.workers?.[w.id] === undefined && opts.canRedirect();
      const orphans = [...unanswered];
      unanswered.clear();
      for (const [seq, handle] of orphans) {
        if (redirect) child.emit('internalMessage', { cmd: 'NODE_CLUSTER', ack: seq, accepted: false });
        else handle.close();
      }
      opts.onOrphans(orphans.length, redirect);
    };
    settle();
  });
}
