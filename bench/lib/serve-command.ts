// The command line the bench starts mtlsgate with, as users run it: `node dist/mtlsgate.mjs
// serve` on a bundle, with the bench PKI's server certificate, on a loopback port.
import { join } from 'node:path';
import type { BenchPki } from './pki.ts';

/**
 * Node flags for the gateway alone, from BENCH_SERVE_NODE_FLAGS (space-separated): to look
 * inside one contender (`--trace-gc`, `--cpu-prof --cpu-prof-dir=DIR`) without the flags
 * reaching the bench, the load or the upstream, and without NODE_OPTIONS, which refuses some.
 */
function serveNodeFlags(): string[] {
  return (process.env.BENCH_SERVE_NODE_FLAGS ?? '').split(' ').filter((f) => f !== '');
}

/** Arguments for process.execPath. `admin`: a loopback port for the admin listener, or 'off'. */
export function serveCommand(root: string, bundle: string, pki: BenchPki, port: number, admin: number | 'off'): string[] {
  return [
    ...serveNodeFlags(),
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
