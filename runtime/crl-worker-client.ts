// Main-thread side of the CRL worker (runtime/crl-worker.ts): one short-lived worker thread per
// large CRL taken, so its signature check and its entry walk (1,000,000 entries: seconds) never
// hold the thread that serves requests. What comes back is adopted as it is (a SerialTable over
// the transferred arrays): nothing per entry is done here.
import { askWorkerOnce } from '../common/worker-thread.ts';
import type { SerialArrays } from './serial-table.ts';

/**
 * CRLs of this many bytes and more are read in the worker thread; smaller ones on the main
 * thread, as before. At 1 MiB (~26,000 entries) both ways blocked the loop about as long
 * (bench/crl-take.ts), and starting a worker costs CPU; at 39 MB the main thread was held 1.5 s.
 */
export const CRL_WORKER_MIN_BYTES = 1024 * 1024;

export interface CrlWorkerRequest {
  /** The CRL as fetched (PEM or DER); a copy the worker owns. */
  crl: Uint8Array;
  /** DER of the CA bound to the URL, then of the other CAs whose subject is the CRL's issuer (for the message). */
  cas: Uint8Array[];
}

export type CrlWorkerReply =
  | { status: 'read'; thisUpdate: number; nextUpdate: number | null; number: string | null; serials: SerialArrays }
  /** The bound CA's signature does not verify; `signer`: the index of the CA whose does, or -1. */
  | { status: 'unsigned'; signer: number }
  | { status: 'refused'; message: string };

/** Reads `crl` in a worker thread. Resolves with its verdict; rejects only when the worker could not run. */
export function readCrlInWorker(crl: Buffer, cas: readonly Buffer[]): Promise<CrlWorkerReply> {
  const copy = new Uint8Array(crl);
  const request: CrlWorkerRequest = { crl: copy, cas: cas.map((c) => new Uint8Array(c)) };
  return askWorkerOnce<CrlWorkerReply>(import.meta.url, 'crl-worker', request, [copy.buffer]);
}
