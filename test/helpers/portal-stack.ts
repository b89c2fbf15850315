// The portal tests' whole set-up: the demo PKI, an upstream, the portal config compiled into a
// bundle, the portal in this process (HTTP on loopback) and the gateway as the built CLI
// serving that bundle (it reloads by file watch when the portal or `approve` rewrites it).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { DemoPki } from '../../cli/pki.ts';
import { closeServer, listen } from '../../common/listen.ts';
import type { CompileFn } from '../../portal/compile.ts';
import { syncBundle } from '../../portal/issue-key.ts';
import { createPortal, type Portal } from '../../portal/server.ts';
import { spawnDemoGateway } from './demo-gateway.ts';
import { startUpstream, writePortalConfig } from './portal-fixtures.ts';
import { CLI, demoPki, run, type Run } from './serve-fixtures.ts';

export interface PortalStack {
  pki: DemoPki;
  /** DIR/config, as writePortalConfig writes it. */
  config: string;
  /** DIR/bundle.json: what the portal writes and the gateway serves. */
  bundle: string;
  portal: Portal;
  /** The portal's base URL (http://127.0.0.1:PORT). */
  base: string;
  gateway: ReturnType<typeof spawnDemoGateway>;
  /** The gateway's base URL (https://127.0.0.1:PORT). */
  gatewayBase: string;
  close(): Promise<void>;
}

/**
 * Starts it all in DIR. `compile` is the portal's compiler (e.g. one that signs); `serveArgs`
 * are more gateway flags (e.g. --bundle-public-key). The initial compile must succeed.
 */
export async function startPortalStack(dir: string, opts: { compile?: CompileFn; serveArgs?: string[] } = {}): Promise<PortalStack> {
  const pki = await demoPki(dir);
  const upstream = await startUpstream();
  const config = writePortalConfig(dir, upstream.url, pki);
  const bundle = join(dir, 'bundle.json');
  let portal: Portal | undefined;
  let gateway: ReturnType<typeof spawnDemoGateway> | undefined;
  const close = async () => {
    gateway?.kill();
    if (portal) await closeServer(portal.server);
    await upstream.close();
  };
  try {
    assert.equal((await syncBundle(config, bundle, opts.compile)).errorCount, 0);
    portal = createPortal({ configDir: config, bundlePath: bundle, gatewayUrl: 'https://localhost:8443', compile: opts.compile });
    const base = `http://127.0.0.1:${(await listen(portal.server, 0, '127.0.0.1')).port}`;
    gateway = spawnDemoGateway(bundle, pki, { extra: opts.serveArgs });
    const gatewayBase = `https://${String((await gateway.serving()).listen)}`;
    return { pki, config, bundle, portal, base, gateway, gatewayBase, close };
  } catch (err) {
    // Whatever started is stopped, so a failed set-up does not hold the test process open.
    await close();
    throw err;
  }
}

/** `mtlsgate approve ARGS` through the built CLI. */
export function approveCli(...args: string[]): Promise<Run> {
  return run(process.execPath, [CLI, 'approve', ...args]);
}
