// What a `serve` test through the built CLI starts from, made as a user makes it: the demo
// PKI, an echo upstream, and writeConfig's two-API config (API "static" pinning `pinned`, API
// "dynamic" with key alice) compiled by `mtlsgate compile` into DIR/bundle.json.
import assert from 'node:assert/strict';
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { after, before } from 'node:test';
import type { DemoPki } from '../../cli/pki.ts';
import { startEchoUpstream, type EchoUpstream } from '../../support/echo-upstream.ts';
import { ensureBuilt, mtlsgate, ROOT } from './cli.ts';
import { tempDir } from './ops-fixtures.ts';
import { compileWithCli, demoPki, writeConfig } from './serve-fixtures.ts';

export interface DemoBundle {
  pki: DemoPki;
  upstream: EchoUpstream;
  bundle: string;
}

async function compileDemoBundle(dir: string, pinned: string[]): Promise<DemoBundle> {
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

/**
 * For the test file (or suite) calling it: a temp directory `dir` (tempDir(name)) in which
 * `before` makes compileDemoBundle's parts; `after` closes the upstream and removes the
 * directory. Read the fields inside tests and hooks, once `before` has run.
 */
export function demoBundleFixture(name: string, pinned: string[]): DemoBundle & { dir: string } {
  const t = tempDir(name);
  const fixture = { dir: t.dir } as DemoBundle & { dir: string };
  before(async () => {
    Object.assign(fixture, await compileDemoBundle(t.dir, pinned));
  });
  after(async () => {
    await fixture.upstream?.close();
    t.cleanup();
  });
  return fixture;
}

/**
 * examples/ copied into DIR/examples without a developer's examples/certs, the demo PKI made in
 * DIR/examples/certs (where the YAML names it), and the copy compiled by `mtlsgate compile`
 * into DIR/bundle.json: what `explain` and `who` tests read.
 */
export async function compileExamples(dir: string): Promise<{ pki: DemoPki; bundle: string }> {
  const config = join(dir, 'examples');
  cpSync(join(ROOT, 'examples'), config, { recursive: true, filter: (src) => !src.includes(join('examples', 'certs')) });
  const pki = await demoPki(config);
  const bundle = join(dir, 'bundle.json');
  await compileWithCli(config, bundle);
  return { pki, bundle };
}
