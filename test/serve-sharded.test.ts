// `mtlsgate compile --shards` and `serve` on a sharded bundle, end to end with the built CLI,
// real TLS and curl: from a directory (watched) and from a URL (polled; shards fetched beside
// the manifest). A key switched off is refused as soon as its shard is written; a shard missing
// from the server is refused and the previous set serves on.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { copyFileSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, normalize } from 'node:path';
import { after, before, test } from 'node:test';
import type { DemoPki } from '../cli/pki.ts';
import { curlE2E, recordingUpstream, type RecordingUpstream, serveBundle } from './helpers/e2e.ts';
import { tempDir, waitFor } from './helpers/ops-fixtures.ts';
import { CLI, demoPki, run } from './helpers/serve-fixtures.ts';

const t = tempDir('serve-sharded');
let pki: DemoPki;
let upstream: RecordingUpstream;

before(async () => {
  pki = await demoPki(t.dir);
  upstream = await recordingUpstream();
});
after(async () => {
  await upstream?.close();
  t.cleanup();
});

/** A config with a dynamic-mTLS API and `n` keys (alice holds the demo certificate, the others tokens). */
function writeConfig(dir: string, aliceInactive: boolean, n = 40): string {
  const config = join(dir, 'config');
  mkdirSync(join(config, 'keys'), { recursive: true });
  writeFileSync(join(config, 'alice.pem'), readFileSync(join(pki.dir, 'alice.pem')));
  writeFileSync(join(config, 'api.yaml'), `kind: api\nid: dyn\nproxy:\n  listen_path: /dyn/\n  target_url: ${upstream.url}\nauth:\n  use_certificate: true\n`);
  writeFileSync(
    join(config, 'keys', 'alice.yaml'),
    `kind: key\nid: alice\ncertificate: ../alice.pem\naccess_rights:\n  dyn: {}\n${aliceInactive ? 'is_inactive: true\n' : ''}`,
  );
  for (let i = 0; i < n; i++)
    writeFileSync(
      join(config, 'keys', `k${i}.yaml`),
      `kind: key\nid: key-${i}\ntoken_sha256: "${createHash('sha256').update(`token-${i}`).digest('hex')}"\naccess_rights:\n  dyn: {}\n`,
    );
  return config;
}

async function compileSharded(config: string, out: string): Promise<string> {
  const r = await run(process.execPath, [CLI, 'compile', config, '-o', out, '--shards', '8']);
  assert.equal(r.code, 0, r.stderr);
  return r.stderr + r.stdout;
}

const alice = (base: string) => curlE2E(`${base}/dyn/x`, pki, { client: 'alice' });

test('serve --bundle DIR: a sharded bundle serves, and a key switched off is refused once its shard is written', async () => {
  const dir = join(t.dir, 'dir');
  const out = join(dir, 'bundle');
  const said = await compileSharded(writeConfig(dir, false), out);
  assert.match(said, /wrote .*manifest\.json and 8 shards \(8 written, 0 old removed\): 1 API, 41 keys/);
  const gw = await serveBundle(out, pki);
  try {
    assert.equal((await alice(gw.base)).status, 200);
    const again = await compileSharded(writeConfig(dir, true), out);
    assert.match(again, /8 shards \(1 written, 0 old removed\)/, 'one key changed: one shard written');
    await waitFor('alice refused', async () => (await alice(gw.base)).json<{ code: string }>().code === 'key.inactive', 30_000, 50);
    const health = (await (await fetch(`${gw.admin}/health`)).json()) as { bundle: { keys: number; source: string } };
    assert.equal(health.bundle.keys, 41);
    const reloaded = gw.proc.lines().find((l) => l.msg === 'bundle reloaded');
    assert.ok(reloaded, 'the reload is logged');
    // What the reload cost the event loop (docs/scale.md): measured, so a number, not a claim.
    assert.equal(typeof reloaded.stall_ms, 'number', JSON.stringify(reloaded));
    assert.equal(typeof reloaded.loop_delay_ms, 'number', JSON.stringify(reloaded));
  } finally {
    await gw.stop();
  }
});

/** Serves a directory's files over HTTP (ETag = the file's bytes' length + name: enough for the poller). */
async function fileServer(root: string) {
  const server: Server = createServer((req, res) => {
    const path = normalize(join(root, decodeURIComponent(new URL(req.url!, 'http://x').pathname)));
    if (!path.startsWith(root)) return void res.writeHead(403).end();
    let body: Buffer;
    try {
      body = readFileSync(path);
    } catch {
      return void res.writeHead(404).end();
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/bundle/manifest.json`,
    close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))),
  };
}

test('serve --bundle URL of a manifest: shards are fetched beside it; a shard the server lacks is refused, the previous set serves on', async () => {
  const dir = join(t.dir, 'url');
  const out = join(dir, 'bundle');
  await compileSharded(writeConfig(dir, false), out);
  const files = await fileServer(dir);
  const gw = await serveBundle(files.url, pki, ['--poll-interval', '200ms', '--allow-insecure-http-bundle']);
  try {
    assert.equal((await alice(gw.base)).status, 200);
    // The new set, compiled beside it, then published with the shard that changed left out
    // (the manifest last, renamed into place, as compile does): the poller sees the new manifest
    // and a missing shard, never the complete set first.
    const before = new Set(readManifestShards(out));
    const staged = join(dir, 'staged');
    await compileSharded(writeConfig(dir, true), staged);
    const changed = readManifestShards(staged).find((d) => !before.has(d))!;
    for (const d of readManifestShards(staged)) if (d !== changed) copyFileSync(join(staged, 'shards', `${d}.json`), join(out, 'shards', `${d}.json`));
    copyFileSync(join(staged, 'manifest.json'), join(out, 'manifest.json.tmp'));
    renameSync(join(out, 'manifest.json.tmp'), join(out, 'manifest.json'));
    const shardFile = join(out, 'shards', `${changed}.json`);
    const error = await waitFor(
      'the reload refused',
      async () => ((await (await fetch(`${gw.admin}/health`)).json()) as { last_reload_error: { message: string } | null }).last_reload_error,
      30_000,
      50,
    );
    assert.match(error.message, /HTTP 404/);
    assert.equal((await alice(gw.base)).status, 200, 'the previous set serves on');
    copyFileSync(join(staged, 'shards', `${changed}.json`), shardFile);
    await waitFor('alice refused', async () => (await alice(gw.base)).json<{ code: string }>().code === 'key.inactive', 30_000, 50);
  } finally {
    await gw.stop();
    await files.close();
  }
});

function readManifestShards(out: string): string[] {
  const m = readFileSync(join(out, 'manifest.json'), 'utf8');
  return (JSON.parse(m.slice(m.indexOf('"content":') + 10, -2)).shards as string[]).map((d) => d.slice(7));
}

test('explain, who and diff read a sharded bundle (its directory or its manifest.json) as the single-file one', async () => {
  const dir = join(t.dir, 'readers');
  const config = writeConfig(dir, true, 5);
  const flat = join(dir, 'flat.json');
  const out = join(dir, 'bundle');
  assert.equal((await run(process.execPath, [CLI, 'compile', config, '-o', flat])).code, 0);
  await compileSharded(config, out);
  const diff = await run(process.execPath, [CLI, 'diff', flat, out]);
  assert.equal(diff.code, 0, diff.stderr);
  assert.match(diff.stdout, /no changes/);
  const alicePem = join(pki.dir, 'alice.pem');
  const explained = await Promise.all(
    [flat, out, join(out, 'manifest.json')].map((b) =>
      run(process.execPath, [CLI, 'explain', '--bundle', b, '--cert', alicePem, '--format', 'json', 'GET', '/dyn/x']),
    ),
  );
  for (const e of explained) assert.equal(e.code, explained[0].code, e.stderr);
  const verdicts = explained.map((e) => JSON.parse(e.stdout).status);
  assert.deepEqual(verdicts, [403, 403, 403], 'alice is switched off in this config');
  const who = await run(process.execPath, [CLI, 'who', '--bundle', out, '--format', 'json', 'dyn']);
  assert.equal(who.code, 0, who.stderr);
  // A shard gone: the reader says which, rather than answering from part of the set.
  const shard = readManifestShards(out)[0];
  renameSync(join(out, 'shards', `${shard}.json`), join(out, `${shard}.moved`));
  const broken = await run(process.execPath, [CLI, 'explain', '--bundle', out, 'GET', '/dyn/x']);
  assert.notEqual(broken.code, 0);
  assert.match(broken.stderr + broken.stdout, /shard shards\/[0-9a-f]{64}\.json cannot be read \(ENOENT\); the manifest names it/);
});
