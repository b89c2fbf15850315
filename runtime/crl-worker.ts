// Worker thread entry: verifies a large CRL's signature and walks its entries off the main
// thread (runtime/crl-fetcher.ts takes CRLs of CRL_WORKER_MIN_BYTES and more through it), and
// posts back the update times, the cRLNumber and the serials as transferred typed arrays
// (runtime/serial-table.ts). The same reader and the same messages as on the main thread.
// Built as dist/crl-worker.mjs beside dist/mtlsgate.mjs; run from source through tsx.
import { X509Certificate } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import { crlSignedBy, signedCrl, walkCrl } from '../bundle/crl.ts';
import type { CrlWorkerReply, CrlWorkerRequest } from './crl-worker-client.ts';
import { SerialTableBuilder } from './serial-table.ts';

function handle(request: CrlWorkerRequest): CrlWorkerReply {
  const bytes = Buffer.from(request.crl.buffer, request.crl.byteOffset, request.crl.byteLength);
  try {
    const signed = signedCrl(bytes);
    // The signature first, the entries only once the bound CA's verifies (as on the main thread).
    const signer = request.cas.findIndex((raw) => crlSignedBy(signed, new X509Certificate(Buffer.from(raw))));
    if (signer !== 0) return { status: 'unsigned', signer };
    // ~39 bytes a 20-byte serial's entry, 40 hex characters: the DER's size is about the hex's.
    const serials = new SerialTableBuilder(signed.der.length);
    const crl = walkCrl(signed.der, (der, start, end) => serials.add(der, start, end));
    return {
      status: 'read',
      thisUpdate: crl.thisUpdate.getTime(),
      nextUpdate: crl.nextUpdate?.getTime() ?? null,
      number: crl.number,
      serials: serials.finish(),
    };
  } catch (err) {
    return { status: 'refused', message: (err as Error).message };
  }
}

parentPort!.once('message', (request: CrlWorkerRequest) => {
  const reply = handle(request);
  parentPort!.postMessage(
    reply,
    reply.status === 'read' ? [reply.serials.hex.buffer, reply.serials.ends.buffer, reply.serials.slots.buffer].map((b) => b as ArrayBuffer) : [],
  );
});
