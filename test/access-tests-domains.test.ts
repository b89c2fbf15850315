// Issue 13: a test case's `url` is "a path or a full URL (its host chooses the domain)". Three
// APIs share one listen path: two on their own domains, one domain-less. The host of a full URL
// (any case, a port, a trailing dot) picks the API as a client's Host header does at a running
// gateway; a path, or a host no API names, reaches the domain-less one. Each case is also sent
// with curl to a gateway serving the same bundle, and the API its request line names is compared.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runAccessTests } from '../access/run.ts';
import type { DemoPki } from '../cli/pki.ts';
import { compileDir } from './helpers/compile-and-load.ts';
import { startEcho, type EchoUpstream } from './helpers/gateway-fixtures.ts';
import { listenPort, spawnDemoGateway } from './helpers/demo-gateway.ts';
import { waitFor } from './helpers/ops-fixtures.ts';
import { CLI, curl, demoPki, run } from './helpers/serve-fixtures.ts';

let tmp: string;
let config: string;
let pki: DemoPki;
let echo: EchoUpstream;

const CASES: Array<[url: string, api: string]> = [
  ['https://a.example/x/1', 'api-a'],
  ['https://b.example:8443/x/1?q=1', 'api-b'],
  ['https://B.EXAMPLE/x/1', 'api-b'],
  ['https://a.example./x/1', 'api-a'],
  ['https://c.example/x/1', 'any'],
  ['/x/1', 'any'],
];

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'mtlsgate-access-domains-'));
  config = join(tmp, 'config');
  mkdirSync(config);
  pki = await demoPki(tmp);
  echo = await startEcho();
  const api = (id: string, domain: string | null) =>
    `kind: api\nid: ${id}\n${domain === null ? '' : `domain: ${domain}\n`}proxy:\n  listen_path: /x/\n  target_url: ${echo.url}\nuse_keyless: true\n---\n`;
  const cases = CASES.map(([url, id]) => `  - request: { url: "${url}" }\n    expect: { status: 200, api: ${id} }\n`).join('');
  writeFileSync(
    join(config, 'config.yaml'),
    `${api('api-a', 'a.example')}${api('api-b', 'b.example')}${api('any', null)}kind: test\nid: domains\ncases:\n${cases}`,
  );
});

after(async () => {
  await echo?.close();
  rmSync(tmp, { recursive: true, force: true });
});

test('mtlsgate test: the host of a full URL chooses the domain; a path or an unnamed host reaches the domain-less API', async () => {
  const t = await run(process.execPath, [CLI, 'test', config]);
  assert.equal(t.code, 0, t.stdout + t.stderr);
  assert.match(t.stdout, /\n6 passed, 0 failed\n$/);
});

test('parity: a running gateway sends each Host to the API the stages chose (curl)', async () => {
  const result = await compileDir(config, { accessTests: runAccessTests });
  assert.equal(result.errorCount, 0, JSON.stringify(result.diagnostics));
  const outcomes = result.tests.outcomes!;
  assert.deepEqual(
    outcomes.map((o) => o.actual.api),
    CASES.map(([, id]) => id),
  );
  const bundle = join(tmp, 'bundle.json');
  writeFileSync(bundle, result.bundle!);
  const serve = spawnDemoGateway(bundle, pki);
  try {
    const port = listenPort(await serve.serving());
    for (const [url] of CASES) {
      const m = /^https:\/\/([^/]+)(\/.*)$/.exec(url);
      const [host, path] = m === null ? [null, url] : [m[1], m[2]];
      const r = await curl(`https://localhost:${port}${path}`, pki, null, host === null ? [] : ['-H', `Host: ${host}`]);
      assert.equal(r.status, 200, `${url}: ${r.body}`);
    }
    const lines = await waitFor('a request line for every case', () => {
      const seen = serve.lines().filter((l) => typeof l.api === 'string' && typeof l.status === 'number');
      return seen.length >= CASES.length ? seen : null;
    });
    assert.deepEqual(
      lines.map((l) => l.api),
      CASES.map(([, id]) => id),
    );
  } finally {
    serve.kill();
    await serve.exited;
  }
});
