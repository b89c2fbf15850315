// `mtlsgate serve` flags as users pass them on the command line, against the built CLI:
// --poll-interval (a URL bundle picked up on the interval), SIGHUP reloading the bundle by
// itself (a URL polled only once an hour), --on-limiter-error allow|deny with Redis down,
// the --listen address forms, and bad values exiting 2 with a message naming the flag.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { DemoPki } from '../cli/pki.ts';
import { compileYaml, curlE2E, recordingUpstream, serveBundle, type RecordingUpstream } from './helpers/e2e.ts';
import { sideBySide } from './helpers/cli.ts';
import { tempDir, waitFor } from './helpers/ops-fixtures.ts';
import { CLI, demoPki, run, spawnServe } from './helpers/serve-fixtures.ts';

const t = tempDir('serve-flags');
let pki: DemoPki;
let upstream: RecordingUpstream;
/** Two bundles that differ by one API (v2 adds /v2/). */
let v1: Buffer;
let v2: Buffer;
let limitedBundle: string;

/** The cases of a describe below each start a gateway of their own (its own port, bundle source and output): they run side by side. */
const SIDE_BY_SIDE = { concurrency: true };

const digestOf = (bytes: Buffer) => JSON.parse(bytes.toString()).digest as string;
const openApi = (id: string, path: string) => `kind: api\nid: ${id}\nproxy:\n  listen_path: ${path}\n  target_url: ${upstream.url}\nuse_keyless: true\n`;

before(async () => {
  pki = await demoPki(t.dir);
  upstream = await recordingUpstream();
  v1 = readFileSync(await compileYaml(join(t.dir, 'v1'), { 'a.yaml': openApi('v1', '/v1/') }));
  v2 = readFileSync(await compileYaml(join(t.dir, 'v2'), { 'a.yaml': openApi('v1', '/v1/'), 'b.yaml': openApi('v2', '/v2/') }));
  limitedBundle = await compileYaml(
    join(t.dir, 'limited'),
    {
      'api.yaml': `kind: api\nid: dyn\nproxy:\n  listen_path: /dyn/\n  target_url: ${upstream.url}\nauth:\n  use_certificate: true\n`,
      'key.yaml': `kind: key\nid: alice\ncertificate: ${join(pki.dir, 'alice.pem')}\naccess_rights:\n  dyn: {}\nrate: 100\nper: 1\n`,
    },
    t.dir,
  );
});
after(async () => {
  await upstream?.close();
  t.cleanup();
});

/** An HTTP server handing out `current` as the bundle (with an ETag), counting GETs. */
async function bundleServer(initial: Buffer) {
  const state = { current: initial, gets: 0 };
  const server: Server = createServer((req, res) => {
    state.gets++;
    const etag = `"${digestOf(state.current)}"`;
    if (req.headers['if-none-match'] === etag) return void res.writeHead(304).end();
    res.writeHead(200, { etag, 'content-type': 'application/json' }).end(state.current);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    state,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/bundle.json`,
    close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))),
  };
}

async function digestAt(admin: string): Promise<string> {
  return ((await (await fetch(`${admin}/health`)).json()) as { bundle: { digest: string } }).bundle.digest;
}

describe('bundle sources', SIDE_BY_SIDE, () => {
  test('--poll-interval: a URL bundle that changes is taken on the next poll, no signal needed', async () => {
    const src = await bundleServer(v1);
    const gw = await serveBundle(src.url, pki, ['--poll-interval', '200ms', '--allow-insecure-http-bundle']);
    try {
      assert.equal((await curlE2E(`${gw.base}/v2/x`, pki)).status, 404);
      src.state.current = v2;
      await waitFor('the polled bundle', async () => (await digestAt(gw.admin)) === digestOf(v2), 30_000, 50);
      assert.equal((await curlE2E(`${gw.base}/v2/x`, pki)).status, 200);
      assert.ok(src.state.gets >= 2, `fetched ${src.state.gets} times: the start-up fetch, then at least one poll`);
    } finally {
      await gw.stop();
      await src.close();
    }
  });

  test('SIGHUP alone reloads the bundle: a URL polled once an hour is fetched at once on SIGHUP', async () => {
    const src = await bundleServer(v1);
    const gw = await serveBundle(src.url, pki, ['--poll-interval', '1h', '--allow-insecure-http-bundle']);
    try {
      src.state.current = v2;
      // Nothing else would fetch it: the first poll is an hour away.
      await new Promise((r) => setTimeout(r, 1_000));
      assert.equal(src.state.gets, 1, 'only the start-up fetch');
      assert.equal(await digestAt(gw.admin), digestOf(v1));
      gw.proc.child.kill('SIGHUP');
      await waitFor('the bundle reloaded by SIGHUP', async () => (await digestAt(gw.admin)) === digestOf(v2), 30_000, 50);
      assert.equal(src.state.gets, 2, 'one fetch, caused by the signal');
      assert.equal((await curlE2E(`${gw.base}/v2/x`, pki)).status, 200);
      assert.ok(gw.proc.lines().some((l) => l.msg === 'bundle reloaded' && l.digest === digestOf(v2)));
      assert.equal(gw.proc.child.exitCode, null, 'SIGHUP does not stop the gateway');
    } finally {
      await gw.stop();
      await src.close();
    }
  });
});

describe('--on-limiter-error with Redis unreachable', SIDE_BY_SIDE, () => {
  let deadRedis: string;
  before(async () => {
    const closed = createNetServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    deadRedis = `redis://127.0.0.1:${(closed.address() as AddressInfo).port}`;
    await new Promise<void>((r) => closed.close(() => r()));
  });

  for (const [mode, status, code] of [
    ['allow', 200, null],
    ['deny', 429, 'limit.rate'],
  ] as const) {
    test(`--on-limiter-error ${mode}: a rate-limited key gets ${status}`, async () => {
      const gw = await serveBundle(limitedBundle, pki, ['--redis', deadRedis, '--redis-timeout', '200ms', '--on-limiter-error', mode]);
      try {
        for (let i = 0; i < 3; i++) {
          const r = await curlE2E(`${gw.base}/dyn/x`, pki, { client: 'alice' });
          assert.equal(r.status, status, r.body);
          if (code !== null) assert.equal(r.json().code, code);
          else assert.equal(r.headers['x-ratelimit-limit'], undefined, 'no made-up rate headers');
        }
      } finally {
        await gw.stop();
      }
    });
  }
});

describe('--listen address forms', SIDE_BY_SIDE, () => {
  const bundleFile = () => join(t.dir, 'v1', 'bundle.json');
  const cases: Array<[flag: string, host: RegExp, curlHost: string]> = [
    ['0', /^127\.0\.0\.1$/, '127.0.0.1'], // a bare port: loopback
    ['127.0.0.1:0', /^127\.0\.0\.1$/, '127.0.0.1'],
    ['[::1]:0', /^::1$/, '[::1]'],
    ['localhost:0', /^(127\.0\.0\.1|::1)$/, 'localhost'],
    [':0', /^(0\.0\.0\.0|::)$/, '127.0.0.1'], // all interfaces
  ];
  for (const [flag, host, curlHost] of cases) {
    test(`--listen ${flag}`, async () => {
      const s = spawnServe([
        '--bundle',
        bundleFile(),
        '--tls-cert',
        join(pki.dir, 'server.pem'),
        '--tls-key',
        join(pki.dir, 'server-key.pem'),
        '--admin',
        'off',
        '--listen',
        flag,
      ]);
      try {
        const serving = await s.serving();
        const listen = String(serving.listen);
        const at = listen.lastIndexOf(':');
        assert.match(listen.slice(0, at), host);
        const r = await curlE2E(`https://${curlHost}:${listen.slice(at + 1)}/v1/x`, pki);
        assert.equal(r.status, 200, r.body);
      } finally {
        s.child.kill('SIGTERM');
        await s.exited;
      }
    });
  }
});

test('bad flag values exit 2 and name the flag', async () => {
  const base = ['--bundle', join(t.dir, 'v1', 'bundle.json'), '--tls-cert', join(pki.dir, 'server.pem'), '--tls-key', join(pki.dir, 'server-key.pem')];
  // Each message names the flag and the value it refused (wording may change, that may not).
  const cases: Array<[string[], RegExp]> = [
    [['--upstream-timeout', '0'], /--upstream-timeout\b.*"0"/],
    [['--upstream-timeout', '2y'], /--upstream-timeout\b.*"2y"/], // 2s, 500ms, 1m30s are durations (issue 16)
    [['--client-idle-timeout', 'soon'], /--client-idle-timeout\b.*"soon"/],
    [['--websocket-idle-timeout', '0'], /--websocket-idle-timeout\b.*"0"/],
    [['--poll-interval=-5'], /--poll-interval\b.*"-5"/],
    [['--redis-timeout', '1.5'], /--redis-timeout\b.*"1\.5"/],
    [['--drain-timeout', 'soon'], /--drain-timeout\b.*"soon"/],
    [['--on-limiter-error', 'maybe'], /--on-limiter-error\b.*"maybe"/],
    [['--listen', '127.0.0.1:70000'], /--listen\b.*"127\.0\.0\.1:70000"/],
    [['--listen', 'example.test'], /--listen\b.*"example\.test"/],
    [['--admin', '1.2.3.4:x'], /--admin\b.*"1\.2\.3\.4:x"/],
    [['--log-level', 'loud'], /--log-level\b.*"loud"/],
    [['--workers', '0'], /--workers\b.*"0"/],
    [['--workers', 'all'], /--workers\b.*"all"/],
    [['--workers', '1.5'], /--workers\b.*"1\.5"/],
    [['--http2-max-resets', '0'], /--http2-max-resets\b.*"0".*has no off/],
    [['--http2-reset-period', '100ms'], /--http2-reset-period\b.*"100ms"/],
    [['--redis', 'http://127.0.0.1:6379'], /Redis URL/i],
    [['--no-such-flag'], /--no-such-flag/],
    [['bundle.json'], /bundle\.json/],
  ];
  // The runs do not depend on each other: four at a time.
  const runs = await sideBySide(cases, 4, ([extra]) => run(process.execPath, [CLI, 'serve', ...base, ...extra], { timeoutMs: 30_000 }));
  for (const [i, [extra, message]] of cases.entries()) {
    const r = runs[i]!;
    assert.equal(r.code, 2, `${extra.join(' ')}: exit ${r.code} (${r.stderr.trim().split('\n')[0]})`);
    assert.match(r.stderr, message, extra.join(' '));
  }
});
