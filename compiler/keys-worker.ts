// Worker thread entry of compiler/parallel-keys.ts: resolves the key files it is handed, one at
// a time, with compiler/key-file.ts, and answers each with its compact result. Built beside the
// CLI as dist/keys-worker.mjs (scripts/build.mjs).
import { parentPort } from 'node:worker_threads';
import { type KeyFileContext, KeyFileResolver, type KeyFileResult } from './key-file.ts';
import { validatorOf } from './schema.ts';
import type { SourceFile } from './source.ts';

export type ToWorker = { type: 'context'; ctx: KeyFileContext } | { type: 'file'; index: number; file: SourceFile };
export type FromWorker = { index: number; result: KeyFileResult } | { index: number; error: string };

const port = parentPort!;
// Compiling the key schema takes a while: done now, while the main thread resolves APIs and policies.
validatorOf('key');

let resolver: KeyFileResolver | undefined;
const waiting: Extract<ToWorker, { type: 'file' }>[] = [];

function resolveWaiting(): void {
  if (!resolver) return;
  for (let m = waiting.shift(); m !== undefined; m = waiting.shift()) {
    let reply: FromWorker;
    try {
      reply = { index: m.index, result: resolver.resolve(m.file) };
    } catch (err) {
      reply = { index: m.index, error: (err as Error).stack ?? String(err) };
    }
    const transfer = 'result' in reply && reply.result.restart === undefined ? columnBuffers(reply.result) : [];
    port.postMessage(reply, transfer);
  }
}

/** The typed arrays of a result move to the main thread instead of being copied. */
function columnBuffers(result: Extract<KeyFileResult, { docs: number }>): ArrayBuffer[] {
  const k = result.keys;
  const witnesses = result.cached?.witnesses;
  return [k.session, k.certCount, k.expiresRows, k.inactiveRows, k.tokenRows, k.certNotAfter, ...(witnesses ? [witnesses.stats] : [])].map(
    (a) => a.buffer as ArrayBuffer,
  );
}

port.on('message', (m: ToWorker) => {
  if (m.type === 'context') resolver = new KeyFileResolver(m.ctx);
  else waiting.push(m);
  resolveWaiting();
});
