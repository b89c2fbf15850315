// What the `serve --workers 2` tests start from: the demo PKI, an upstream that answers after
// ?delay=MS and keeps every request it got (`arrived`), and a bundle of one certificate-bound
// API whose keys carry the limits the tests share between workers (writeBundle). The gateways a
// test spawns (serveWorkers) are killed, the upstream closed and the directory removed after
// the file's tests.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before } from 'node:test';
import type { DemoPki } from '../../cli/pki.ts';
import { writeFileAtomic } from '../../common/atomic-write.ts';
import { compileDir } from './compile-and-load.ts';
import { spawnDemoGateway } from './demo-gateway.ts';
import { curl, demoPki, type spawnServe } from './serve-fixtures.ts';
import { tempDir } from './ops-fixtures.ts';

export interface WorkersFixture {
  dir: string;
  /** Made in `before`. */
  pki: DemoPki;
  /** DIR/bundle.json, written by writeBundle (first in `before`). */
  bundle: string;
  /** Every request the upstream got, in order. */
  arrived: IncomingMessage[];
  /** The gateways spawned, killed after the file's tests. */
  children: Array<ReturnType<typeof spawnServe>>;
  /**
   * API "dynamic" (the certificate names the key): alice has a quota of 100, bob a rate of 20 an
   * hour, mallory a quota of 4,000, partner-a no limit; `extra` adds an open API (another digest,
   * same limits).
   */
  writeBundle(extra?: boolean): Promise<void>;
  /** `serve --workers 2` on the bundle, admin on loopback. */
  serveWorkers(extra?: string[]): ReturnType<typeof spawnServe>;
  /** `count` curl requests, `parallel` at a time, each its own process and TLS connection. */
  curlMany(url: string, client: string, count: number, parallel?: number): Promise<Array<{ status: number; body: string }>>;
}

export function workersFixture(name: string): WorkersFixture {
  const t = tempDir(name);
  let upstream: ReturnType<typeof createServer>;
  let target = '';
  const w: WorkersFixture = {
    dir: t.dir,
    pki: undefined as unknown as DemoPki,
    bundle: join(t.dir, 'bundle.json'),
    arrived: [],
    children: [],
    async writeBundle(extra = false) {
      const dir = join(t.dir, extra ? 'cfg-extra' : 'cfg');
      mkdirSync(dir, { recursive: true });
      const key = (id: string, limits: string[]) =>
        [`kind: key`, `id: ${id}`, `certificate: ${join(w.pki.dir, `${id}.pem`)}`, 'access_rights:\n  dynamic: {}', ...limits].join('\n') + '\n';
      const docs = [
        `kind: api\nid: dynamic\nproxy:\n  listen_path: /dynamic/\n  target_url: ${target}\nauth:\n  use_certificate: true\n`,
        key('alice', ['quota_max: 100', 'quota_renewal_rate: 3600']),
        key('bob', ['rate: 20', 'per: 3600']),
        key('mallory', ['quota_max: 4000', 'quota_renewal_rate: 3600']),
        key('partner-a', []),
      ];
      if (extra) docs.push(`kind: api\nid: extra\nproxy:\n  listen_path: /extra/\n  target_url: ${target}\nuse_keyless: true\n`);
      writeFileSync(join(dir, 'apis.yaml'), docs.join('---\n'));
      // The certificates live beside the config, in the demo PKI's directory.
      const result = await compileDir(dir, { allowOutside: [t.dir] });
      if (!result.bundle) throw new Error(`${dir} does not compile: ${JSON.stringify(result.diagnostics)}`);
      writeFileAtomic(w.bundle, result.bundle);
    },
    serveWorkers(extra = []) {
      const s = spawnDemoGateway(w.bundle, w.pki, { admin: 'loopback', extra: ['--workers', '2', ...extra] });
      w.children.push(s);
      return s;
    },
    async curlMany(url, client, count, parallel = 6) {
      const out: Array<{ status: number; body: string }> = [];
      let next = 0;
      await Promise.all(
        Array.from({ length: parallel }, async () => {
          while (next < count) {
            next++;
            out.push(await curl(url, w.pki, client));
          }
        }),
      );
      return out;
    },
  };
  before(async () => {
    w.pki = await demoPki(t.dir);
    upstream = createServer((req: IncomingMessage, res: ServerResponse) => {
      w.arrived.push(req);
      const delay = Number(/delay=(\d+)/.exec(req.url ?? '')?.[1] ?? 0);
      setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ path: req.url }) + '\n'), delay);
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    target = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    await w.writeBundle();
  });
  after(async () => {
    w.children.forEach((c) => c.kill());
    await new Promise<void>((r) => (upstream.close(() => r()), upstream.closeAllConnections()));
    t.cleanup();
  });
  return w;
}

/** The value of one sample of the aggregated /metrics (0 when absent). */
export function sample(metrics: string, name: string, labels: string): number {
  const line = metrics
    .split('\n')
    .find((l) => (labels === '' ? l.startsWith(`${name} `) : l.startsWith(`${name}{`) && labels.split(',').every((p) => l.includes(p))));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}
