// The proxy promises of docs/gateway.md, end to end (YAML -> CLI compile -> `mtlsgate serve`
// child process -> curl): headers the gateway drops or appends, an upstream that stalls before
// or inside its body (--upstream-timeout).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { curlE2E, e2eFixture, serveBundle, type Served } from './helpers/e2e.ts';
import { waitFor } from './helpers/ops-fixtures.ts';
import { run } from './helpers/serve-fixtures.ts';

/** What --upstream-timeout is set to here; the default (30 s) would be far longer. */
const UPSTREAM_TIMEOUT_MS = 1_500;
const DEFAULT_UPSTREAM_TIMEOUT_MS = 30_000;

const e2e = e2eFixture('e2e-proxy', ({ pki, upstream }) => ({
  'apis.yaml': [
    `kind: api\nid: open\nproxy:\n  listen_path: /open/\n  target_url: ${upstream.url}\nuse_keyless: true\n`,
    `kind: api\nid: pinned\nproxy:\n  listen_path: /pinned/\n  target_url: ${upstream.url}\nuse_keyless: true\nuse_mutual_tls_auth: true\nclient_certificates:\n  - ${join(pki.dir, 'alice.pem')}\n`,
  ].join('---\n'),
}));
const lastSeen = () => e2e.upstream.requests.at(-1)!;

describe('headers and timeouts, one serve process with --upstream-timeout', () => {
  let gw: Served;
  before(async () => {
    gw = await serveBundle(e2e.bundle, e2e.pki, ['--upstream-timeout', `${UPSTREAM_TIMEOUT_MS}ms`]);
  });
  after(async () => {
    assert.deepEqual(await gw?.stop(), { code: 0, signal: null });
  });

  test('Expect, Upgrade, Transfer-Encoding, Keep-Alive, Trailer and TE never reach the upstream; the body does', async () => {
    const body = 'y'.repeat(64 * 1024);
    const r = await curlE2E(`${gw.base}/open/upload`, e2e.pki, {
      method: 'POST',
      data: body,
      headers: {
        expect: '100-continue',
        upgrade: 'h2c',
        'keep-alive': 'timeout=5, max=100',
        trailer: 'X-Checksum',
        te: 'trailers',
        'x-end-to-end': 'kept',
      },
    });
    assert.equal(r.status, 200, r.body);
    const seen = lastSeen();
    for (const name of ['expect', 'upgrade', 'keep-alive', 'trailer', 'te']) assert.equal(seen.headers[name], undefined, `${name} dropped`);
    assert.equal(seen.headers['x-end-to-end'], 'kept');
    assert.equal(seen.body.length, body.length, 'the body arrived whole');
  });

  test("a client's Transfer-Encoding is not passed on: the upstream gets the gateway's own framing", async () => {
    // curl sends the body chunked with "Transfer-Encoding: gzip, chunked" (the gzip is a lie:
    // the bytes are plain). Passed on, the upstream would try to gunzip them.
    const r = await curlE2E(`${gw.base}/open/chunked`, e2e.pki, {
      method: 'POST',
      data: 'plain text, not gzip',
      headers: { 'transfer-encoding': 'gzip, chunked' },
    });
    assert.equal(r.status, 200, r.body);
    const seen = lastSeen();
    assert.notEqual(seen.headers['transfer-encoding'], 'gzip, chunked');
    assert.ok(seen.headers['transfer-encoding'] === undefined || seen.headers['transfer-encoding'] === 'chunked', String(seen.headers['transfer-encoding']));
    assert.equal(seen.body, 'plain text, not gzip');
  });

  test("a client's X-Forwarded-For is replaced by its address: only --trusted-proxies may add to it", async () => {
    // Was "appended to, not replaced" (203.0.113.7, 198.51.100.2, 127.0.0.1): from a client that
    // is no trusted proxy that let anyone name any address (docs/security.md section 23).
    await curlE2E(`${gw.base}/open/xff`, e2e.pki, { headers: { 'x-forwarded-for': '203.0.113.7, 198.51.100.2' } });
    assert.equal(lastSeen().headers['x-forwarded-for'], '127.0.0.1');
    await curlE2E(`${gw.base}/open/xff2`, e2e.pki);
    assert.equal(lastSeen().headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(lastSeen().headers['x-forwarded-proto'], 'https');
  });

  test('an upstream that sends no headers: 504 proxy.upstream_timeout after --upstream-timeout, not the 30 s default', async () => {
    const started = Date.now();
    const r = await curlE2E(`${gw.base}/open/stall-headers/x`, e2e.pki);
    const ms = Date.now() - started;
    assert.deepEqual([r.status, r.json()], [504, { error: 'Upstream timed out', code: 'proxy.upstream_timeout' }]);
    // Timers never fire early (lower bound); the upper bound only tells the flag from the default.
    assert.ok(ms >= UPSTREAM_TIMEOUT_MS - 100, `504 after ${ms} ms, before the ${UPSTREAM_TIMEOUT_MS} ms timeout`);
    assert.ok(ms < DEFAULT_UPSTREAM_TIMEOUT_MS, `504 after ${ms} ms: --upstream-timeout was not applied`);
  });

  test('an upstream body that stalls after the headers: the 200 is cut short, not completed or hung', async () => {
    const started = Date.now();
    const r = await run('curl', [
      '-sS',
      '--max-time',
      '60',
      '--cacert',
      join(e2e.pki.dir, 'ca.pem'),
      '-o',
      '/dev/null',
      '-w',
      '%{http_code} %{size_download}',
      `${gw.base}/open/stall-body/x`,
    ]);
    const ms = Date.now() - started;
    // 18: "partial file" (fewer bytes than Content-Length); 56: connection reset mid-body; 92:
    // the HTTP/2 stream reset with INTERNAL_ERROR (curl speaks h2 here: a cut answer is reset so,
    // never ended cleanly; docs/security.md section 22).
    assert.ok(r.code === 18 || r.code === 56 || r.code === 92, `curl exit ${r.code} (${r.stderr.trim()}): the response must be cut`);
    assert.equal(r.stdout, '200 100', 'status 200 and the 100 bytes the upstream sent, no more');
    assert.ok(ms >= UPSTREAM_TIMEOUT_MS - 100 && ms < DEFAULT_UPSTREAM_TIMEOUT_MS, `cut after ${ms} ms`);
    const line = await waitFor('the request log line', () => gw.proc.lines().find((l) => l.msg === 'request' && String(l.path).includes('/stall-body/')));
    assert.equal(line.status, 502);
    assert.equal(line.code, 'proxy.upstream_error');
  });
});
