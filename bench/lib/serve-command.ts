// The command line the bench starts mtlsgate with, as users run it: `node dist/mtlsgate.mjs
// serve` on a bundle, with the bench PKI's server certificate, on a loopback port.
import { join } from 'node:path';
import type { BenchPki } from './pki.ts';

/** Arguments for process.execPath. `admin`: a loopback port for the admin listener, or 'off'. */
export function serveCommand(root: string, bundle: string, pki: BenchPki, port: number, admin: number | 'off'): string[] {
  return [
    join(root, 'dist/mtlsgate.mjs'),
    'serve',
    '--bundle',
    bundle,
    '--tls-cert',
    pki.files.server.cert,
    '--tls-key',
    pki.files.server.key,
    '--listen',
    `127.0.0.1:${port}`,
    '--admin',
    admin === 'off' ? 'off' : `127.0.0.1:${admin}`,
  ];
}
