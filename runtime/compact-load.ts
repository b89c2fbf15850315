// Bundle bytes -> a verified compact bundle: what the worker runs on a reload and the main
// thread runs at start-up, so both refuse the same bundles with the same messages.
import { checkWireKeys } from '../bundle/checks.ts';
import { loadWireBundle } from '../bundle/read.ts';
import { type CompactBundle, compactWire } from './bundle-worker-compact.ts';

/** Throws BundleError for bytes that do not verify; a key the runtime cannot use is reported as `keyError`. */
export function verifyCompact(bytes: Buffer, bytesSha256: string): CompactBundle {
  const { digest, signature, wire } = loadWireBundle(bytes);
  // A bad key is reported by the snapshot after the APIs are checked, as buildSnapshot does.
  let keyError: string | null = null;
  try {
    checkWireKeys(wire);
  } catch (err) {
    keyError = (err as Error).message;
  }
  return compactWire(wire, digest, signature, bytesSha256, keyError);
}
