// docs/security.md section 49: what `serve --bundle URL` sends (runtime/outbound-get.ts,
// runtime/shard-set.ts). Real `mtlsgate serve`, a real HTTP server on loopback that checks every
// request, curl through the gateway. Before: (1) a URL's user name and password were not sent, so
// a server asking for them answered 401 and serve failed to start with a bare `HTTP 401`; (2) a
// sharded bundle's shard URLs dropped the manifest URL's query string, so a server wanting
// `?token=` on every path answered the shards 403 and serve failed to start.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, normalize } from 'node:path';
import { after, before, test } from 'node:test';
import type { DemoPki } from '../cli/pki.ts';
import { serveBundle } from './helpers/e2e.ts';
import { startEcho, type EchoUpstream } from './helpers/gateway-fixtures.ts';
import { tempDir } from './helpers/ops-fixtures.ts';
import { CLI, compileWithCli, curl, demoPki, run, spawnServe, writeConfig } from './helpers/serve-fixtures.ts';

const tmp = tempDir('outbound-bundle');
let pki: DemoPki;
let echo: EchoUpstream;
const servers: Server[] = [];

before(async () => {
  pki = await demoPki(tmp.dir);
  echo = await startEcho();
});
after(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
  await echo?.close();
  tmp.cleanup();
});

/** Serves `root`'s files to requests `admit` lets through (else its status); records every request's path and Authorization. */
async function guardedFiles(root: string, admit: (req: IncomingMessage) => number | null) {
  const seen: Array<{ url: string; authorization: string | undefined }> = [];
  const server = createServer((req, res) => {
    seen.push({ url: req.url!, authorization: req.headers.authorization });
    const refused = admit(req);
    if (refused !== null) return void res.writeHead(refused, { 'www-authenticate': 'Basic realm="bundles"' }).end();
    const path = normalize(join(root, decodeURIComponent(new URL(req.url!, 'http://x').pathname)));
    if (!path.startsWith(root)) return void res.writeHead(403).end();
    try {
      res.writeHead(200, { 'content-type': 'application/json' }).end(readFileSync(path));
    } catch {
      res.writeHead(404).end();
    }
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, seen };
}

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

test('a bundle URL with user:password@ is fetched with them as HTTP Basic; they are in no log line', async () => {
  const dir = join(tmp.dir, 'basic');
  await compileWithCli(writeConfig(dir, pki.dir, echo.url, ['alice']), join(dir, 'bundle.json'));
  // The password holds "@" and ":" percent-encoded, as curl takes them.
  const files = await guardedFiles(dir, (req) => (req.headers.authorization === basic('ops', 'p@ss:w0rd') ? null : 401));
  const url = `http://ops:p%40ss%3Aw0rd@127.0.0.1:${files.port}/bundle.json`;
  // Before: serve exited: "cannot fetch bundle from http://REDACTED@127.0.0.1:PORT/bundle.json: HTTP 401".
  const gw = await serveBundle(url, pki, ['--poll-interval', '200ms', '--allow-insecure-http-bundle']);
  try {
    assert.equal((await curl(`${gw.base}/static/x`, pki, 'alice')).status, 200);
    // The polls carry them too.
    const polls = files.seen.length;
    await new Promise((r) => setTimeout(r, 600));
    assert.ok(files.seen.length > polls, 'polled since');
    assert.ok(files.seen.every((s) => s.authorization === basic('ops', 'p@ss:w0rd')));
    const { stdout, stderr } = gw.proc.output();
    assert.doesNotMatch(stdout + stderr, /p%40ss|p@ss|w0rd|cHNz/, 'no log line holds the password');
    assert.match(stdout, /http:\/\/REDACTED@127\.0\.0\.1:\d+\/bundle\.json/);
  } finally {
    await gw.stop();
  }
});

test('a user:password@ bundle URL over plain http to a host that is not loopback is refused at start, before any request', async () => {
  // 192.0.2.1 (TEST-NET-1) answers nothing: the refusal must come before a connection is tried.
  const gw = spawnServe([
    '--bundle',
    'http://ops:secret@192.0.2.1:8080/bundle.json',
    '--tls-cert',
    join(pki.dir, 'server.pem'),
    '--tls-key',
    join(pki.dir, 'server-key.pem'),
    '--allow-insecure-http-bundle',
  ]);
  const { code } = await gw.exited;
  const { stdout, stderr } = gw.output();
  assert.notEqual(code, 0);
  assert.match(
    stderr,
    /--bundle http:\/\/REDACTED@192\.0\.2\.1:8080\/bundle\.json carries a user name and password over plain http to a host that is not loopback: they would cross the network in the clear\. Use https/,
  );
  assert.doesNotMatch(stdout + stderr, /secret/);
});

/** serve on a sharded bundle from a server wanting `?token=` on every path (and `ops:pw` as Basic when `withPassword`). */
async function shardedBehindToken(name: string, withPassword: boolean) {
  const dir = join(tmp.dir, name);
  const r = await run(process.execPath, [CLI, 'compile', writeConfig(dir, pki.dir, echo.url, ['alice']), '-o', join(dir, 'bundle'), '--shards', '4']);
  assert.equal(r.code, 0, r.stderr);
  // Every path wants the token (a container SAS, an internal server's ?token=).
  const files = await guardedFiles(dir, (req) => {
    if (new URL(req.url!, 'http://x').searchParams.get('token') !== 's3cr3t-t0ken') return 403;
    return !withPassword || req.headers.authorization === basic('ops', 'pw') ? null : 401;
  });
  const url = `http://${withPassword ? 'ops:pw@' : ''}127.0.0.1:${files.port}/bundle/manifest.json?token=s3cr3t-t0ken`;
  const gw = await serveBundle(url, pki, ['--allow-insecure-http-bundle']);
  try {
    assert.equal((await curl(`${gw.base}/static/x`, pki, 'alice')).status, 200);
    const shards = files.seen.filter((s) => s.url.startsWith('/bundle/shards/'));
    assert.ok(shards.length > 0, 'shards were fetched');
    for (const s of shards) assert.match(s.url, /^\/bundle\/shards\/[0-9a-f]{64}\.json\?token=s3cr3t-t0ken$/);
    if (withPassword) assert.ok(shards.every((s) => s.authorization === basic('ops', 'pw')));
    assert.doesNotMatch(gw.proc.output().stdout, /s3cr3t/, 'the token is in no log line');
  } finally {
    await gw.stop();
  }
}

// Before: the manifest came, its shards were asked for without ?token= and answered 403: serve exited.
test("a sharded bundle's shards are fetched with the manifest URL's query string (?token=)", () => shardedBehindToken('sharded-token', false));

test("a sharded bundle's shards are fetched with the manifest URL's query string and its user:password@", () => shardedBehindToken('sharded-both', true));
