// The server's certificate and key files, kept current: re-read on SIGHUP, and watched, so a
// certificate renewed on disk is served without a signal, as Envoy's file-based SDS and Caddy
// do it (Kubernetes sends no SIGHUP when it updates a Secret volume). The watch is the bundle
// file's (runtime/watch-file.ts watches the directories, so an in-place write, an atomic rename
// and a Secret volume's "..data" symlink swap are all seen). cert-manager and certbot's deploy
// hooks write both files of a pair within one burst, which the quiet time waits out; a pair
// read half-renewed (the new certificate with the old key) is refused as on SIGHUP
// (runtime/tls-credentials.ts: all pairs or none), the previous pairs serve on, and the key
// file's own event reads the pair again.
import type { Logger } from './log.ts';
import { oneAtATime } from './one-at-a-time.ts';
import { readTlsPairs, type TlsFiles } from './tls-credentials.ts';
import type { TlsPair } from './tls-servers.ts';
import { watchFile } from './watch-file.ts';

/** Quiet time after the last event: longer than the bundle's, since a pair is two files written one after the other. */
const TLS_DEBOUNCE_MS = 250;

export interface TlsFollower {
  /** SIGHUP: read every pair now and serve them (or log the refusal). */
  reload(): Promise<void>;
  close(): Promise<void>;
}

interface TlsFollowOptions {
  files: readonly TlsFiles[];
  /** The pairs read at start (serving now). */
  serving: readonly TlsPair[];
  /** Makes new handshakes use these pairs (the first is the default). */
  apply(pairs: TlsPair[]): void;
  log: Logger;
  debounceMs?: number;
}

const samePairs = (a: readonly TlsPair[], b: readonly TlsPair[]) =>
  a.length === b.length && a.every((p, i) => Buffer.from(p.cert).equals(Buffer.from(b[i].cert)) && Buffer.from(p.key).equals(Buffer.from(b[i].key)));

export function followTlsFiles(opts: TlsFollowOptions): TlsFollower {
  const { files, log } = opts;
  let serving = opts.serving;
  const shown = files.length === 1 ? files[0].certFile : files.map((f) => f.certFile);
  const read = async (trigger: 'SIGHUP' | 'file change') => {
    try {
      const pairs = await readTlsPairs(files);
      // A watch event that changed no byte (a touch, another file's rename in the directory).
      if (trigger === 'file change' && samePairs(pairs, serving)) return;
      opts.apply(pairs);
      serving = pairs;
      log.info({ tls_cert: shown, trigger }, 'server certificate reloaded');
    } catch (err) {
      // All pairs or none: one bad file must not leave a host with no certificate.
      log.error(
        { error: (err as Error).message, trigger },
        files.length === 1 ? 'server certificate refused; the previous one keeps serving' : 'server certificates refused; the previous ones keep serving',
      );
    }
  };
  const onChange = oneAtATime(() => read('file change'));
  const paths = new Set(files.flatMap((f) => [f.certFile, f.keyFile]));
  const watches = [...paths].map((path) =>
    watchFile(path, () => void onChange.run(), {
      debounceMs: opts.debounceMs ?? TLS_DEBOUNCE_MS,
      onError: (err) => log.warn({ tls_file: path, error: err.message }, 'cannot watch a server certificate file; SIGHUP still reloads it'),
    }),
  );
  return {
    reload: () => read('SIGHUP'),
    async close() {
      await Promise.all(watches.map((w) => w.close()));
      await onChange.idle();
    },
  };
}
