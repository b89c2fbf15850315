// What a `serve` test through the built CLI starts from, made as a user makes it: the demo
// PKI, an echo upstream, and writeConfig's two-API config (API "static" pinning `pinned`, API
// "dynamic" with key alice) compiled by `mtlsgate compile` into DIR/bundle.json.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { DemoPki } from '../../cli/pki.ts';
import { startEchoUpstream, type EchoUpstream } from '../../support/echo-upstream.ts';
import { ensureBuilt, mtlsgate, ROOT } from './cli.ts';
import { demoPki, writeConfig } from './serve-fixtures.ts';

export interface DemoBundle {
  pki: DemoPki;
  upstream: EchoUpstream;
  bundle: string;
}

export async function compileDemoBundle(dir: string, pinned: string[]): Promise<DemoBundle> {
  ensureBuilt();
  const pki = await demoPki(dir);
  const upstream = await startEchoUpstream({ name: 'echo', port: 0 });
  const bundle = join(dir, 'bundle.json');
  const r = mtlsgate(['compile', writeConfig(join(dir, 'cfg'), pki.dir, `http://127.0.0.1:${upstream.address.port}`, pinned), '-o', bundle], {
    cwd: ROOT,
  });
  if (r.code !== 0) await upstream.close();
  assert.equal(r.code, 0, r.stderr);
  return { pki, upstream, bundle };
}
