// The CRL thread (runtime/crl-worker-client.ts starts it, once, and reuses it): reads a large
// CRL off the main thread. 'read' (runtime/crl-fetcher.ts: a crl_url's answer, a peer's copy):
// the PEM decoded, the signature checked, the entries walked, and the update times, the
// cRLNumber and the serials posted back as transferred typed arrays (runtime/serial-table.ts).
// 'floor' (runtime/cluster/verify-taken.ts: the primary): the signature and the header only.
// The same reader and the same messages as on the main thread.
// Built as dist/crl-worker.mjs beside dist/mtlsgate.mjs; run from source through tsx.
import { X509Certificate } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import { crlFloorOf, crlSignedBy, signedCrl, walkCrl } from '../bundle/crl.ts';
import { subjectNameDer } from '../cert/der.ts';
import { handCrlFile, readHandedFile } from './cluster/crl-files.ts';
import type { CrlJob, CrlWorkerAnswer, CrlWorkerMessage, CrlWorkerReply } from './crl-worker-client.ts';
import { SerialTableBuilder } from './serial-table.ts';

const asBuffer = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
const ownsBuffer = (b: Uint8Array) => b.byteOffset === 0 && b.byteLength === b.buffer.byteLength;

function handle(job: CrlJob): { reply: CrlWorkerReply; transfer: ArrayBuffer[] } {
  try {
    if (job.kind === 'hand') return { reply: { status: 'handed', file: handCrlFile(job.dir, job.crl) }, transfer: [] };
    if (job.kind === 'floor') {
      const bytes = 'file' in job ? readHandedFile(job.file) : Buffer.from(job.base64, 'base64');
      if (typeof bytes === 'string') return { reply: { status: 'refused', message: bytes }, transfer: [] };
      const floor = crlFloorOf(bytes, new X509Certificate(asBuffer(job.ca)));
      return { reply: typeof floor === 'string' ? { status: 'refused', message: floor } : { status: 'floor', ...floor }, transfer: [] };
    }
    const joined = Array.isArray(job.crl) ? Buffer.concat(job.crl.map(asBuffer)) : readHandedFile(job.crl);
    if (typeof joined === 'string') return { reply: { status: 'refused', message: joined }, transfer: [] };
    const signed = signedCrl(joined);
    // The signature first, the entries only once the bound CA's verifies (as on the main thread).
    // Another CA is tried for the message only when its subject is the CRL's issuer.
    const cas = job.cas.map((raw) => new X509Certificate(asBuffer(raw)));
    if (!crlSignedBy(signed, cas[0])) {
      const signer = cas.findIndex((ca, i) => i > 0 && subjectNameDer(ca.raw)?.equals(signed.issuer) === true && crlSignedBy(signed, ca));
      return { reply: { status: 'unsigned', signer }, transfer: [] };
    }
    // ~39 bytes a 20-byte serial's entry, 40 hex characters: the DER's size is about the hex's.
    const serials = new SerialTableBuilder(signed.der.length);
    const crl = walkCrl(signed.der, (der, start, end) => serials.add(der, start, end));
    const arrays = serials.finish();
    return {
      reply: {
        status: 'read',
        thisUpdate: crl.thisUpdate.getTime(),
        nextUpdate: crl.nextUpdate?.getTime() ?? null,
        number: crl.number,
        serials: arrays,
        crl: joined,
      },
      // The CRL's bytes go back joined (the caller reports them to the primary): moved when
      // alone in their buffer (a short list's concat is in node's pool: cloned).
      transfer: [arrays.hex.buffer, arrays.ends.buffer, arrays.slots.buffer, ...(ownsBuffer(joined) ? [joined.buffer] : [])].map((b) => b as ArrayBuffer),
    };
  } catch (err) {
    return { reply: { status: 'refused', message: (err as Error).message }, transfer: [] };
  }
}

parentPort!.on('message', ({ id, job }: CrlWorkerMessage) => {
  const { reply, transfer } = handle(job);
  parentPort!.postMessage({ id, reply } satisfies CrlWorkerAnswer, transfer);
});
