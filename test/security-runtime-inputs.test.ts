// Section 44: every file `serve` reads from a path the operator names is a regular file of a
// bounded size (common/regular-file.ts), through the built CLI. At start a named pipe, a device
// or a file past its bound as --bundle (a file, a sharded bundle's manifest or shard),
// --tls-cert, --tls-key, the state file or proxy.upstream_tls's client key is exit 2 at once,
// naming the flag or field and the path; before, a named pipe held start-up for ever. On SIGHUP
// a named pipe as the key file or the bundle file is refused, naming it, the old certificate and
// bundle serve on, and the next good file is taken (before, the read waited for a writer, and
// every later reload waited behind it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { issueCert } from '../cli/pki.ts';
import { writeFileAtomic } from '../common/atomic-write.ts';
import { MAX_BUNDLE_BYTES, MAX_TLS_FILE_BYTES } from '../common/size-limits.ts';
import { mtlsgateAsync, sideBySide } from './helpers/cli.ts';
import { demoBundleFixture } from './helpers/demo-bundle.ts';
import { demoServeArgs, listenPort, servedCn, spawnDemoGateway } from './helpers/demo-gateway.ts';
import { waitFor } from './helpers/ops-fixtures.ts';
import { CLI, curl, run, spawnServe } from './helpers/serve-fixtures.ts';

const demo = demoBundleFixture('runtime-inputs', ['partner-a']);

const mkfifo = (path: string) => execFileSync('mkfifo', [path]);

/** A file of `size` bytes that takes no disk (a hole): past a bound without writing it. */
function sparse(path: string, size: number): string {
  writeFileSync(path, '');
  truncateSync(path, size);
  return path;
}

/** A bundle compiled with an upstream_tls client pair at paths under `dir`; the key then replaced by a named pipe. */
async function upstreamTlsBundleWithPipeKey(dir: string): Promise<{ bundle: string; key: string }> {
  const config = join(dir, 'config');
  mkdirSync(config, { recursive: true });
  const pair = await issueCert(demo.pki.ca, 'gateway-client');
  const cert = join(dir, 'client.pem');
  const key = join(dir, 'client-key.pem');
  writeFileSync(cert, pair.certPem);
  writeFileSync(key, pair.keyPem, { mode: 0o600 });
  writeFileSync(join(config, 'ca.pem'), demo.pki.ca.certPem);
  writeFileSync(
    join(config, 'api.yaml'),
    `kind: api\nid: backend\nuse_keyless: true\nproxy:\n  listen_path: /backend/\n  target_url: https://127.0.0.1:9\n  upstream_tls:\n    ca: ca.pem\n    client_certificate: ${cert}\n    client_key_file: ${key}\n`,
  );
  const bundle = join(dir, 'bundle.json');
  const r = await mtlsgateAsync(['compile', config, '-o', bundle, '--allow-outside', dir]);
  assert.equal(r.code, 0, r.stderr);
  rmSync(key);
  mkfifo(key);
  return { bundle, key };
}

test('serve refuses at start, at once and naming the flag or field and the path, a named pipe, a device or a file past its bound', async () => {
  const d = join(demo.dir, 'start');
  mkdirSync(d);
  const pipe = join(d, 'pipe');
  mkfifo(pipe);
  // A sharded bundle whose manifest is a named pipe, and a real one with a shard replaced by one.
  const pipeManifest = join(d, 'pipe-manifest');
  mkdirSync(pipeManifest);
  mkfifo(join(pipeManifest, 'manifest.json'));
  const sharded = join(d, 'sharded');
  const c = await mtlsgateAsync(['compile', join(demo.dir, 'cfg', 'config'), '-o', sharded, '--shards', '2']);
  assert.equal(c.code, 0, c.stderr);
  const shard = readdirSync(join(sharded, 'shards'))[0]!;
  rmSync(join(sharded, 'shards', shard));
  mkfifo(join(sharded, 'shards', shard));
  // A state directory as serve wants it (mode 700) whose state.json is a named pipe.
  const state = join(d, 'state');
  mkdirSync(state, { mode: 0o700 });
  mkfifo(join(state, 'state.json'));
  const upstream = await upstreamTlsBundleWithPipeKey(join(d, 'upstream'));

  const server = join(demo.pki.dir, 'server.pem');
  const serverKey = join(demo.pki.dir, 'server-key.pem');
  const withTls = (cert: string, key: string) => ['--bundle', demo.bundle, '--tls-cert', cert, '--tls-key', key, '--listen', '127.0.0.1:0', '--admin', 'off'];
  const cases: Array<[string, string[], RegExp]> = [
    ['--bundle a named pipe', demoServeArgs(pipe, demo.pki), /cannot read --bundle .*pipe: it is a named pipe, not a regular file$/m],
    ['--bundle /dev/zero', demoServeArgs('/dev/zero', demo.pki), /cannot read --bundle \/dev\/zero: it is a character device, not a regular file$/m],
    [
      '--bundle past MAX_BUNDLE_BYTES',
      demoServeArgs(sparse(join(d, 'huge.json'), MAX_BUNDLE_BYTES + 1), demo.pki),
      new RegExp(`cannot read --bundle .*huge\\.json: it is ${MAX_BUNDLE_BYTES + 1} bytes, more than the ${MAX_BUNDLE_BYTES} read at most`),
    ],
    [
      '--bundle DIR with a named pipe as manifest.json',
      demoServeArgs(pipeManifest, demo.pki),
      /--bundle .*pipe-manifest: cannot read .*pipe-manifest\/manifest\.json: it is a named pipe, not a regular file/,
    ],
    [
      '--bundle DIR with a named pipe as a shard',
      demoServeArgs(sharded, demo.pki),
      new RegExp(`shard shards/${shard} cannot be read \\(it is a named pipe, not a regular file\\)`),
    ],
    ['--tls-cert a named pipe', withTls(pipe, serverKey), /cannot read --tls-cert .*pipe: it is a named pipe, not a regular file/],
    ['--tls-key /dev/zero', withTls(server, '/dev/zero'), /cannot read --tls-key \/dev\/zero: it is a character device, not a regular file/],
    [
      '--tls-cert past MAX_TLS_FILE_BYTES',
      withTls(sparse(join(d, 'huge.pem'), MAX_TLS_FILE_BYTES + 1), serverKey),
      new RegExp(`cannot read --tls-cert .*huge\\.pem: it is ${MAX_TLS_FILE_BYTES + 1} bytes, more than the ${MAX_TLS_FILE_BYTES} read at most`),
    ],
    [
      'state.json a named pipe',
      demoServeArgs(demo.bundle, demo.pki, { extra: ['--state-dir', state] }),
      /--state-dir: cannot read .*state\.json: it is a named pipe/,
    ],
    [
      'proxy.upstream_tls.client_key_file a named pipe',
      demoServeArgs(upstream.bundle, demo.pki),
      new RegExp(`api backend: proxy\\.upstream_tls\\.client_key_file ${upstream.key} cannot be read: it is a named pipe, not a regular file`),
    ],
  ];
  const started = Date.now();
  // Each is a process of its own (killed at 15 s: what a held start-up comes to).
  const results = await sideBySide(cases, 4, ([, args]) => run(process.execPath, [CLI, 'serve', ...args], { timeoutMs: 15_000 }));
  for (const [i, [what, , message]] of cases.entries()) {
    assert.equal(results[i]!.code, 2, `${what}: exit status (stderr: ${results[i]!.stderr})`);
    assert.match(results[i]!.stderr, message, what);
  }
  // Ten start-ups, four at a time: each refusal comes before the listeners, not after a wait.
  assert.ok(Date.now() - started < 12_000, `${Date.now() - started} ms`);
});

test('on SIGHUP a named pipe as --tls-key is refused, naming it; the old certificate serves on, and a real key is then taken', async () => {
  const d = join(demo.dir, 'sighup-tls');
  mkdirSync(d);
  const cert = join(d, 'server.pem');
  const key = join(d, 'server-key.pem');
  const serverPair = (name: string) => issueCert(demo.pki.ca, name, { dns: ['localhost'], usage: 'server' });
  const old = await serverPair('old');
  writeFileSync(cert, old.certPem);
  writeFileSync(key, old.keyPem);
  const s = spawnServe(['--bundle', demo.bundle, '--tls-cert', cert, '--tls-key', key, '--listen', '127.0.0.1:0', '--admin', 'off']);
  try {
    const port = listenPort(await s.serving());
    assert.equal(await servedCn(port), 'old');

    const renewed = await serverPair('renewed');
    writeFileSync(cert, renewed.certPem);
    rmSync(key);
    mkfifo(key);
    s.child.kill('SIGHUP');
    const refused = await waitFor(
      'the SIGHUP refusal',
      () => s.lines().find((l) => l.msg === 'server certificate refused; the previous one keeps serving' && l.trigger === 'SIGHUP'),
      5_000,
      50,
    );
    assert.match(String(refused.error), /^cannot read --tls-key .*server-key\.pem: it is a named pipe, not a regular file$/);
    assert.equal(await servedCn(port), 'old', 'the old certificate keeps serving');

    // Nothing is left waiting on the pipe: the next reload reads the real key.
    rmSync(key);
    writeFileSync(key, renewed.keyPem);
    s.child.kill('SIGHUP');
    await waitFor('the renewed pair served', async () => (await servedCn(port)) === 'renewed', 5_000, 100);
  } finally {
    s.kill();
  }
});

test('a bundle file replaced by a named pipe: the reload is refused, naming it; the old bundle serves on, and the next good file is taken', async () => {
  const d = join(demo.dir, 'sighup-bundle');
  mkdirSync(d);
  const bundle = join(d, 'bundle.json');
  copyFileSync(demo.bundle, bundle);
  const s = spawnDemoGateway(bundle, demo.pki);
  try {
    const port = listenPort(await s.serving());
    const url = `https://localhost:${port}/static/hello`;
    assert.equal((await curl(url, demo.pki, 'partner-a')).status, 200);

    rmSync(bundle);
    mkfifo(bundle);
    s.child.kill('SIGHUP');
    const refused = await waitFor('the refusal', () => s.lines().find((l) => l.msg === 'bundle refused; the previous bundle keeps serving'), 5_000, 50);
    assert.match(String(refused.error), /^cannot read bundle file .*bundle\.json: it is a named pipe, not a regular file$/);
    assert.equal((await curl(url, demo.pki, 'partner-a')).status, 200, 'the old bundle keeps serving');

    // The pipe removed and the same bundle written in its place (writeFileAtomic refuses to
    // replace a pipe): read, as nothing is left waiting on the pipe, and built again on SIGHUP
    // (a forced reload logs "bundle reloaded").
    const reloadedBefore = s.lines().filter((l) => l.msg === 'bundle reloaded').length;
    rmSync(bundle);
    writeFileAtomic(bundle, readFileSync(demo.bundle));
    s.child.kill('SIGHUP');
    await waitFor('the good file taken', () => s.lines().filter((l) => l.msg === 'bundle reloaded').length > reloadedBefore, 5_000, 50);
    assert.equal((await curl(url, demo.pki, 'partner-a')).status, 200);
  } finally {
    s.kill();
  }
});
