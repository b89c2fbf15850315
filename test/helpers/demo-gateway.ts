// `mtlsgate serve` through the built CLI on a bundle, with the demo PKI's server certificate
// and a free loopback port: the command line most end-to-end tests start the gateway with.
import { join } from 'node:path';
import { connect } from 'node:tls';
import type { DemoPki } from '../../cli/pki.ts';
import { spawnServe } from './serve-fixtures.ts';

export interface DemoGatewayOptions {
  /** The admin listener: 'off' (the default) or a free loopback port. */
  admin?: 'off' | 'loopback';
  /** More `serve` flags, after the ones above. */
  extra?: string[];
}

/** The `serve` arguments: --bundle, the demo server certificate and key, --listen and --admin on loopback. */
export function demoServeArgs(bundle: string, pki: DemoPki, opts: DemoGatewayOptions = {}): string[] {
  return [
    '--bundle',
    bundle,
    '--tls-cert',
    join(pki.dir, 'server.pem'),
    '--tls-key',
    join(pki.dir, 'server-key.pem'),
    '--listen',
    '127.0.0.1:0',
    '--admin',
    opts.admin === 'loopback' ? '127.0.0.1:0' : 'off',
    ...(opts.extra ?? []),
  ];
}

/** Spawns the gateway (see spawnServe: `serving()`, `lines()`, `kill()`). */
export function spawnDemoGateway(bundle: string, pki: DemoPki, opts: DemoGatewayOptions = {}): ReturnType<typeof spawnServe> {
  return spawnServe(demoServeArgs(bundle, pki, opts));
}

/** The port of the gateway's HTTPS listener, from its "mtlsgate serving" line (`listen: "127.0.0.1:PORT"`). */
export function listenPort(serving: Record<string, unknown>): number {
  return Number(String(serving.listen).split(':').pop());
}

/** The CN of the certificate the gateway on `port` serves now for SNI localhost (a real handshake, not verified). */
export function servedCn(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false }, () => {
      const cn = socket.getPeerCertificate().subject?.CN;
      socket.destroy();
      resolve(String(cn));
    });
    socket.on('error', reject);
  });
}
