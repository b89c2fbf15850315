// A cluster worker's report of a CRL it took (runtime/peer-floors.ts): the primary verifies it
// (verify-taken.ts), keeps it for replacements and hands it to the other workers. A list under
// CRL_WORKER_MIN_BYTES travels in the message as base64, as before (1 MiB is ~1.4 MB of JSON:
// a few ms to parse); a larger one as a file in the primary's hand-off directory, written by
// this worker's CRL thread with its SHA-256 (crl-files.ts), so the message is a few hundred
// bytes (under 1 KiB) and neither this worker's event loop nor the primary's encodes, parses or copies the list.
import { CRL_WORKER_MIN_BYTES, type CrlThread, crlThread, handCrlInWorker } from '../crl-worker-client.ts';
import type { CrlFloor } from '../revocation.ts';
import type { TakenMessage } from './lease-protocol.ts';

export interface TakenCrl {
  url: string;
  floor: CrlFloor;
  /** The CRL's bytes as taken (a large list's move to the CRL thread: not used after this). */
  bytes?: Buffer;
  /** The DER of the CA it was verified against. */
  issuer?: Buffer;
}

/** Sends the primary `crl` (a file in `crlDir` from CRL_WORKER_MIN_BYTES on); rejects when the file cannot be written. */
export async function reportCrl(crl: TakenCrl, crlDir: string, send: (m: TakenMessage) => void, thread: CrlThread = crlThread): Promise<void> {
  const { url, floor, bytes, issuer } = crl;
  const ca = issuer?.toString('base64');
  if (bytes === undefined || bytes.length < CRL_WORKER_MIN_BYTES) {
    send({ type: 'mtlsgate:taken', crl: { url, floor, der: bytes?.toString('base64'), issuer: ca } });
    return;
  }
  const reply = await handCrlInWorker(bytes, crlDir, thread);
  if (reply.status !== 'handed')
    throw new Error(reply.status === 'refused' ? `cannot write its hand-off file: ${reply.message}` : `the CRL thread answered ${reply.status}`);
  send({ type: 'mtlsgate:taken', crl: { url, floor, file: reply.file, issuer: ca } });
}
