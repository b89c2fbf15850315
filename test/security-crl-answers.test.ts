// docs/security.md section 46: what a crl_url answers cannot hold the gateway's event loop.
// Whoever answers a crl_url (plain HTTP, so also whoever sits on the path to it) sent a body
// the gateway read for seconds before refusing it, on the thread that serves every request:
// (1) 1 MB of "-----BEGIN X509 CRL-----" with no END (the PEM regex was quadratic: 20 s and
// more per fetch, tried again every retry), (2) a CertificateList of made-up entries with a
// signature the CA never made (every entry walked before the signature was checked: seconds
// for 47 MB). Real `mtlsgate serve`, a real HTTP server answering the URL, curl through the
// gateway and /live on the same process while it fetches.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { HealthReport } from '../runtime/admin.ts';
import { listenPort, spawnDemoGateway } from './helpers/demo-gateway.ts';
import { startEcho, type EchoUpstream } from './helpers/gateway-fixtures.ts';
import { createOpensslCa, type OpensslCa } from './helpers/openssl-pki.ts';
import { tempDir, waitFor } from './helpers/ops-fixtures.ts';
import { curl, demoPki } from './helpers/serve-fixtures.ts';
import { crlBundle, serveBodies } from './helpers/crl-workers.ts';

const tmp = tempDir('crl-answers');
let pki: Awaited<ReturnType<typeof demoPki>>;
let echo: EchoUpstream;
let ca: OpensslCa;
const servers: Server[] = [];
type Gateway = ReturnType<typeof spawnDemoGateway>;
const started: Gateway[] = [];

/** One DER TLV (definite length). */
function tlv(tag: number, body: Buffer): Buffer {
  const n = body.length;
  const len: number[] = [];
  if (n < 128) len.push(n);
  else {
    for (let x = n; x > 0; x = Math.floor(x / 256)) len.unshift(x & 0xff);
    len.unshift(0x80 | len.length);
  }
  return Buffer.concat([Buffer.from([tag, ...len]), body]);
}

/** A CertificateList with `entries` revoked serials, thisUpdate now, signed by nobody (65 zero bytes). */
function madeUpCrl(entries: number): Buffer {
  const utc = (d: Date) => tlv(0x17, Buffer.from(`${d.toISOString().slice(2, 19).replace(/[-T:]/g, '')}Z`));
  const now = utc(new Date());
  const ecdsaSha256 = tlv(0x30, tlv(0x06, Buffer.from([0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02])));
  const list: Buffer[] = [];
  for (let i = 0; i < entries; i++) {
    const serial = Buffer.alloc(20);
    serial[0] = 0x11;
    serial.writeUInt32BE(i + 1, 16);
    list.push(tlv(0x30, Buffer.concat([tlv(0x02, serial), now])));
  }
  const issuer = tlv(0x30, tlv(0x31, tlv(0x30, Buffer.concat([tlv(0x06, Buffer.from([0x55, 0x04, 0x03])), tlv(0x0c, Buffer.from('Internal CA'))]))));
  const tbs = tlv(
    0x30,
    Buffer.concat([tlv(0x02, Buffer.from([1])), ecdsaSha256, issuer, now, utc(new Date(Date.now() + 86_400_000)), tlv(0x30, Buffer.concat(list))]),
  );
  return tlv(0x30, Buffer.concat([tbs, ecdsaSha256, tlv(0x03, Buffer.alloc(65))]));
}

before(async () => {
  pki = await demoPki(tmp.dir);
  echo = await startEcho();
  ca = createOpensslCa('Internal CA');
  const alice = ca.issue('alice', '/CN=alice');
  copyFileSync(alice.cert, join(pki.dir, 'alice.pem'));
  copyFileSync(alice.key, join(pki.dir, 'alice-key.pem'));
});
after(async () => {
  for (const gw of started) gw.kill();
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
  await echo?.close();
  ca?.cleanup();
  tmp.cleanup();
});

/** serve with one API trusting the CA, whose crl_url answers `body`, fetched every second. */
async function launch(name: string, body: Buffer): Promise<Gateway> {
  const url = `${await serveBodies(servers, () => ({ body }))}/${name}.crl`;
  mkdirSync(join(tmp.dir, name));
  const bundle = await crlBundle(join(tmp.dir, name), ca, echo.url, url);
  const gw = spawnDemoGateway(bundle, pki, { admin: 'loopback', extra: ['--crl-stale', 'open', '--crl-refresh', '1s'] });
  started.push(gw);
  return gw;
}

/**
 * Asks /live (answered on the thread that serves requests) every 50 ms for `ms`, each within
 * 2 s; returns the slowest answer. Before the fix a fetch held the thread for 5 to 20 s.
 */
async function slowestLive(gw: Gateway, ms: number): Promise<number> {
  const admin = (await gw.serving()).admin as string;
  let slowest = 0;
  for (const end = Date.now() + ms; Date.now() < end; ) {
    const t = performance.now();
    const res = await fetch(`http://${admin}/live`, { signal: AbortSignal.timeout(2_000) }).catch((err: Error) => {
      throw new Error(`/live did not answer within 2 s: the event loop is held (${err.message})`);
    });
    await res.text();
    slowest = Math.max(slowest, performance.now() - t);
    await new Promise((r) => setTimeout(r, 50));
  }
  return slowest;
}

async function lastError(gw: Gateway): Promise<string | null> {
  const res = await fetch(`http://${(await gw.serving()).admin}/health`);
  return ((await res.json()) as HealthReport).revocation?.crl_urls[0].last_error ?? null;
}

describe('a crl_url answer is refused without holding the event loop (real serve, fetched every second)', () => {
  test('1 MB of "-----BEGIN X509 CRL-----" without an END: refused at once as no CRL; requests keep being answered', async (t) => {
    const gw = await launch('begins', Buffer.from('-----BEGIN X509 CRL-----'.repeat(42_000)));
    const error = await waitFor('the answer refused', () => lastError(gw), 30_000);
    assert.match(error, /is neither a DER CRL nor PEM/);
    // Fetched and refused again every second meanwhile.
    const slowest = await slowestLive(gw, 4_000);
    t.diagnostic(`slowest /live ${Math.round(slowest)} ms`);
    assert.ok(slowest < 1_000, `slowest /live ${Math.round(slowest)} ms`);
    const r = await curl(`https://127.0.0.1:${listenPort(await gw.serving())}/ca/x`, pki, 'alice');
    assert.equal(r.status, 200);
  });

  test('47 MB of made-up entries the CA never signed: refused on its signature, the entries never walked', async (t) => {
    const gw = await launch('made-up', madeUpCrl(1_200_000));
    const error = await waitFor('the answer refused', () => lastError(gw), 60_000);
    assert.match(error, /its signature does not verify against the CA this URL is bound to/);
    const slowest = await slowestLive(gw, 4_000);
    t.diagnostic(`slowest /live ${Math.round(slowest)} ms`);
    assert.ok(slowest < 1_000, `slowest /live ${Math.round(slowest)} ms`);
  });
});
