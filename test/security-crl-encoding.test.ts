// docs/security.md section 50b: a crl_url's answer is decoded as its Content-Encoding says.
// Before, the fetch sent no Accept-Encoding and read the body as it came: a CRL server that
// compresses anyway (nginx `gzip_static always`, a CDN) answered gzip bytes, refused as "neither
// a DER CRL nor PEM", and the list went stale. Now the fetch asks for gzip, deflate and br and
// decodes them in node:zlib's streams, with the decoded bytes under the same ceiling as a raw
// CRL: a zip bomb is refused with a message that says so, and the CRL in use keeps serving.
// A real HTTP server on loopback answers; the runtime's fetcher takes what it sends.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { brotliCompressSync, deflateRawSync, deflateSync, gzipSync } from 'node:zlib';
import { createCa, type Issued, issueCert } from '../cli/pki.ts';
import { MAX_CRL_BYTES } from '../common/size-limits.ts';
import { askedFetcher } from './helpers/crl-fetcher.ts';
import { createCrl } from './helpers/demo-crl.ts';

let server: Server;
let url: string;
let answer: { body: Buffer; encoding?: string } = { body: Buffer.alloc(0) };
const asked: IncomingHttpHeaders[] = [];
let ca: Issued;
let revokedSerial: string;
let crl: Buffer;

before(async () => {
  ca = await createCa('Encoding CA');
  const leaf = await issueCert(ca, 'lost');
  revokedSerial = new X509Certificate(leaf.certPem).serialNumber.toLowerCase().replace(/^0+/, '');
  crl = Buffer.from(await createCrl(ca, [leaf]));
  server = createServer((req, res) => {
    asked.push(req.headers);
    res.writeHead(200, answer.encoding === undefined ? {} : { 'content-encoding': answer.encoding }).end(answer.body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/ca.crl`;
});
after(() => {
  server.closeAllConnections();
  server.close();
});

function fetcherFor() {
  const asked = askedFetcher([url], ca);
  return { ...asked, entry: () => asked.store.byUrl.get(url)! };
}

test('gzip, deflate (zlib and raw) and br answers are decoded and taken; the fetch asks for them', async () => {
  for (const [encoding, body] of [
    ['gzip', gzipSync(crl)],
    ['x-gzip', gzipSync(crl)],
    ['deflate', deflateSync(crl)],
    ['deflate', deflateRawSync(crl)],
    ['br', brotliCompressSync(crl)],
    ['identity', crl],
  ] as const) {
    answer = { body, encoding };
    const { fetcher, errors, entry } = fetcherFor();
    try {
      await fetcher.refreshAll();
      assert.deepEqual(errors, [], encoding);
      assert.ok(entry().serials.has(revokedSerial), `${encoding}: the revoked serial is in the list taken`);
      assert.equal(entry().stale, false);
    } finally {
      fetcher.stop();
    }
  }
  assert.match(String(asked.at(-1)?.['accept-encoding']), /gzip/);
  assert.match(String(asked.at(-1)?.['accept-encoding']), /br/);
});

test('a zip bomb (gzip decoding past the CRL ceiling) is refused with a precise message; the CRL in use keeps serving', async () => {
  const { fetcher, errors, entry, store } = fetcherFor();
  try {
    answer = { body: gzipSync(crl), encoding: 'gzip' };
    await fetcher.refreshAll();
    const taken = { fetchedAt: entry().fetchedAt, generation: store.generation };
    assert.ok(entry().serials.has(revokedSerial));
    // 128 MiB of zeros: ~130 KB on the wire, twice the ceiling decoded.
    answer = { body: gzipSync(Buffer.alloc(2 * MAX_CRL_BYTES), { level: 9 }), encoding: 'gzip' };
    assert.ok(answer.body.length < 1024 * 1024);
    const heapBefore = process.memoryUsage().arrayBuffers;
    await fetcher.refreshAll();
    assert.equal(errors.at(-1), `its gzip body decodes to more than ${MAX_CRL_BYTES} bytes (a zip bomb, or a CRL past the ceiling): not decoded further`);
    assert.ok(process.memoryUsage().arrayBuffers - heapBefore < 2 * MAX_CRL_BYTES, 'never held the whole decoded body');
    assert.ok(entry().serials.has(revokedSerial), 'the list in use still revokes');
    assert.equal(entry().fetchedAt, taken.fetchedAt);
    assert.equal(store.generation, taken.generation);
  } finally {
    fetcher.stop();
  }
});

test('an unknown or broken coding is refused naming it; the CRL in use keeps serving', async () => {
  const { fetcher, errors, entry } = fetcherFor();
  try {
    answer = { body: crl };
    await fetcher.refreshAll();
    answer = { body: crl, encoding: 'zstd' };
    await fetcher.refreshAll();
    assert.equal(errors.at(-1), 'its Content-Encoding (zstd) is not one this gateway decodes: one of gzip, deflate, br, as its Accept-Encoding says');
    answer = { body: gzipSync(crl).subarray(0, 100), encoding: 'gzip' };
    await fetcher.refreshAll();
    assert.equal(errors.at(-1), 'its gzip body does not decode (unexpected end of file)');
    answer = { body: Buffer.from('not gzip at all'), encoding: 'gzip' };
    await fetcher.refreshAll();
    assert.equal(errors.at(-1), 'its gzip body does not decode (incorrect header check)');
    assert.ok(entry().serials.has(revokedSerial));
  } finally {
    fetcher.stop();
  }
});
