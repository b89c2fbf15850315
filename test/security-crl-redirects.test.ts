// docs/security.md section 49: where a crl_url's redirect may lead (runtime/outbound-get.ts).
// Whoever answers a plain-HTTP crl_url (or sits on the path to it) answers with a redirect; before,
// the gateway followed it to any http(s) address, up to 20 times: its own loopback ports, cloud
// metadata (169.254.169.254), from https down to http. Real `mtlsgate serve`, real HTTP(S) servers:
// one on this host's non-loopback address 192.0.2.2 (a public address as far as the policy goes),
// the list's own server on loopback, which records whether the redirect reached it.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { execFileSync } from 'node:child_process';
import type { HealthReport } from '../runtime/admin.ts';
import { addressKind } from '../runtime/outbound-get.ts';
import { demoServeArgs, listenPort } from './helpers/demo-gateway.ts';
import { crlBundle, crlWorkersSetup, stolenAndLost } from './helpers/crl-workers.ts';
import { waitFor } from './helpers/ops-fixtures.ts';
import { curl, spawnServe } from './helpers/serve-fixtures.ts';

const setup = crlWorkersSetup('crl-redirects', 'Redirect CA');
const { tmp, servers, gateways } = setup;
/** The CA's list revoking `stolen` and `lost` (made once setup's own `before` has run). */
let list: string | undefined;

/** This host's address that is neither loopback, link-local nor private (192.0.2.2 on the test machine), or undefined. */
function hostPublicAddress(): string | undefined {
  // Public as the redirect policy itself judges it (runtime/outbound-get.ts), not by a second list of ranges.
  return Object.values(networkInterfaces())
    .flat()
    .find((a) => a?.family === 'IPv4' && !a.internal && addressKind(a.address) === 'public')?.address;
}

/** A documentation address (TEST-NET-2: public to the policy) put on lo when the host has no public address of its own. */
const ADDED_ADDRESS = '198.51.100.7';
let addedAddress = false;

/**
 * The address the "public" CRL server listens on: the host's own, or one this test adds to lo
 * (CI runs as root; iproute2 is installed) and removes after, so the test runs on every machine
 * rather than being skipped where no public address exists.
 */
function publicAddressForTest(): string {
  const own = hostPublicAddress();
  if (own !== undefined) return own;
  execFileSync('ip', ['addr', 'add', `${ADDED_ADDRESS}/32`, 'dev', 'lo']);
  addedAddress = true;
  return ADDED_ADDRESS;
}

after(() => {
  if (addedAddress) execFileSync('ip', ['addr', 'del', `${ADDED_ADDRESS}/32`, 'dev', 'lo']);
});

async function listen(server: Server, host: string): Promise<number> {
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, host, r));
  return (server.address() as AddressInfo).port;
}

/** The CRL's own server on loopback; `hits` counts the requests that reached it. */
async function listServer() {
  list ??= stolenAndLost(setup.ca, setup.pki).full;
  const body = list;
  const state = { hits: 0 };
  const port = await listen(
    createServer((_req, res) => {
      state.hits++;
      res.writeHead(200).end(body);
    }),
    '127.0.0.1',
  );
  return { state, port };
}

/** A server on `host` answering every request with a 302 to `location(path)` (https with the demo server certificate when `tls`). */
async function redirector(host: string, location: (path: string) => string, tls = false): Promise<string> {
  const handler = (req: { url?: string }, res: import('node:http').ServerResponse) => void res.writeHead(302, { location: location(req.url!) }).end();
  const server = tls
    ? createHttpsServer({ cert: readFileSync(join(setup.pki.dir, 'server.pem')), key: readFileSync(join(setup.pki.dir, 'server-key.pem')) }, handler)
    : createServer(handler);
  const port = await listen(server as Server, host);
  return `${tls ? 'https' : 'http'}://${host}:${port}`;
}

/** serve with one API whose crl_url is `url`; the URL's state in /health once it has a fetched_at or a last_error. */
async function serveWithCrl(name: string, url: string) {
  mkdirSync(join(tmp.dir, name));
  const bundle = await crlBundle(join(tmp.dir, name), setup.ca, setup.echo.url, url);
  const gw = spawnServe(demoServeArgs(bundle, setup.pki, { admin: 'loopback', extra: ['--crl-stale', 'closed', '--crl-refresh', '1s'] }), {
    ...process.env,
    NODE_EXTRA_CA_CERTS: join(setup.pki.dir, 'ca.pem'),
  });
  gateways.push(gw);
  const serving = await gw.serving();
  const health = async () => ((await (await fetch(`http://${serving.admin}/health`)).json()) as HealthReport).revocation?.crl_urls[0];
  const crl = await waitFor('the crl_url fetched', async () => {
    const h = await health();
    return h?.fetched_at || h?.last_error ? h : undefined;
  });
  return { gw, crl, port: listenPort(serving) };
}

test('held: a redirect from a loopback crl_url to another loopback server (a CDN) is followed and the list taken', async () => {
  const target = await listServer();
  const from = await redirector('127.0.0.1', (p) => `http://127.0.0.1:${target.port}${p}`);
  const { crl, port } = await serveWithCrl('same-kind', `${from}/ca.crl`);
  assert.equal(crl.last_error, null);
  assert.ok(target.state.hits >= 1);
  assert.notEqual((await curl(`https://127.0.0.1:${port}/ca/x`, setup.pki, 'lost')).status, 200, 'lost is revoked');
});

test('a redirect from a loopback crl_url to cloud metadata (169.254.169.254) is not followed', async () => {
  const from = await redirector('127.0.0.1', () => 'http://169.254.169.254/latest/meta-data/iam/security-credentials/');
  const { crl } = await serveWithCrl('metadata', `${from}/ca.crl`);
  // Before: followed (a connection to 169.254.169.254 tried; "fetch failed" or a timeout).
  assert.match(
    String(crl.last_error),
    /redirect from http:\/\/127\.0\.0\.1:\d+\/ca\.crl not followed: it leads to http:\/\/169\.254\.169\.254\/latest\/meta-data\/iam\/security-credentials\/: 169\.254\.169\.254 is a link-local address, and the configured URL's is not \(loopback\)/,
  );
});

test('a redirect from a public crl_url to a loopback port, by address or by a name that resolves to it, is not followed: the port gets no request', async () => {
  const publicAddress = publicAddressForTest();
  const target = await listServer();
  for (const [name, host] of [
    ['literal', '127.0.0.1'],
    ['name', 'localhost'],
  ] as const) {
    const from = await redirector(publicAddress, (p) => `http://${host}:${target.port}${p}`);
    const { crl } = await serveWithCrl(`public-to-${name}`, `${from}/ca.crl`);
    // Before: followed; the loopback server answered and the list was taken.
    assert.match(String(crl.last_error), /not followed: .*127\.0\.0\.1 is a loopback address, and the configured URL's is not \(public\)/);
    assert.equal(target.state.hits, 0, `${name}: the loopback port got no request`);
  }
});

test('a redirect from https to plain http is not followed', async () => {
  const target = await listServer();
  const from = await redirector('127.0.0.1', (p) => `http://127.0.0.1:${target.port}${p}`, true);
  const { crl } = await serveWithCrl('downgrade', `${from}/ca.crl`);
  // Before: followed, and the list taken over plain http.
  assert.match(String(crl.last_error), /redirect from https:\/\/127\.0\.0\.1:\d+\/ca\.crl not followed: it leads from https to plain http/);
  assert.equal(target.state.hits, 0);
});

test('at most 5 redirects are followed', async () => {
  const target = await listServer();
  // /6 redirects to /5 ... /1 to the list: six redirects.
  const from = await redirector('127.0.0.1', (p) => {
    const n = Number(p.slice(1));
    return n > 1 ? `/${n - 1}` : `http://127.0.0.1:${target.port}/ca.crl`;
  });
  const { crl } = await serveWithCrl('six', `${from}/6`);
  // Before: followed (fetch follows 20).
  assert.match(String(crl.last_error), /not followed: more than 5 redirects/);
  assert.equal(target.state.hits, 0);
  const { crl: five } = await serveWithCrl('five', `${from}/5`);
  assert.equal(five.last_error, null, 'five are followed');
});
