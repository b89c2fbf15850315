// runtime/peer-floors.ts below the cluster (review of session 12, each case failed before its fix):
// a peer's CRL goes to the exact URL it came from; a floor that rises while a bundle is verified
// off the main thread still refuses it; a list fetched again unchanged is not sent to the other
// workers again; and the primary replays what was taken to a worker that starts later.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { after, test } from 'node:test';
import { generateSigningKeys, readPrivateKey, readPublicKey, signBundle } from '../bundle/sign.ts';
import { createCa, issueCert } from '../cli/pki.ts';
import { TakenSoFar } from '../runtime/cluster/taken-so-far.ts';
import { startCrlFetcher } from '../runtime/crl-fetcher.ts';
import { redactUrl } from '../runtime/redact.ts';
import { CrlStore } from '../runtime/revocation.ts';
import { crlFloorKey, crlStateKey, startState } from '../runtime/state-file.ts';
import { BundleStore } from '../runtime/store.ts';
import { createCrl } from './helpers/demo-crl.ts';
import { bundleOf, openApi } from './helpers/ops-fixtures.ts';

const servers: Server[] = [];
after(() => {
  for (const s of servers) s.close();
});
async function serve(handler: Parameters<typeof createServer>[1]): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/crl`;
}
const serial = (pem: string) => new X509Certificate(pem).serialNumber.toLowerCase().replace(/^0+/, '');

test("a peer's CRL is taken for the exact URL it was fetched from, not every URL that looks the same once redacted", async () => {
  const ca = await createCa('Partitioned CA');
  const [a, b] = [await issueCert(ca, 'a'), await issueCert(ca, 'b')];
  const part1 = Buffer.from(await createCrl(ca, [a], { thisUpdate: new Date(Date.now() - 10_000) }));
  const part2 = Buffer.from(await createCrl(ca, [b], { thisUpdate: new Date(Date.now() - 60_000) }));
  const base = await serve((req, res) => res.end(req.url!.includes('part=1') ? part1 : part2));
  const [u1, u2] = [`${base}?part=1`, `${base}?part=2`];
  const store = new CrlStore();
  store.setUrls(
    [u1, u2],
    new Map([
      [u1, ca.fingerprint],
      [u2, ca.fingerprint],
    ]),
  );
  const trusted = { fingerprint: ca.fingerprint, cert: new X509Certificate(ca.certPem) };
  const snapshot = { revocationCas: () => [trusted] } as never;
  const fetcher = startCrlFetcher({ snapshot: () => snapshot, store, intervalMs: 600_000, retryMs: 600_000 });
  try {
    await fetcher.refreshAll();
    assert.ok(store.byUrl.get(u2)!.serials.has(serial(b.certPem)));
    // Before, the URL sent between workers was the redacted one, and an offer went to every URL
    // that redacts the same: part 1's newer list replaced part 2's, and b was admitted.
    fetcher.offer(redactUrl(u1), part1);
    assert.ok(store.byUrl.get(u2)!.serials.has(serial(b.certPem)), 'part 2 still revokes b');
    fetcher.offer(u1, part1);
    assert.ok(store.byUrl.get(u2)!.serials.has(serial(b.certPem)), 'part 2 still revokes b');
    assert.ok(store.byUrl.get(u1)!.serials.has(serial(a.certPem)));
  } finally {
    fetcher.stop();
  }
});

test('an unchanged CRL fetched again is not reported again (no storm between workers); a peer copy of the list in use is dropped', async () => {
  const ca = await createCa('CA');
  const crl = Buffer.from(await createCrl(ca, [await issueCert(ca, 'a')]));
  const url = await serve((_req, res) => res.end(crl)); // no ETag: every fetch is a 200
  const store = new CrlStore();
  store.setUrls([url], new Map([[url, ca.fingerprint]]));
  const trusted = { fingerprint: ca.fingerprint, cert: new X509Certificate(ca.certPem) };
  const snapshot = { revocationCas: () => [trusted] } as never;
  const reported: number[] = [];
  const peers: boolean[] = [];
  const fetcher = startCrlFetcher({
    snapshot: () => snapshot,
    store,
    intervalMs: 600_000,
    retryMs: 600_000,
    onEvent: (e) => {
      if (e.taken !== undefined) reported.push(e.bytes!.length);
      if (e.fromPeer && e.result === 'updated') peers.push(true);
    },
  });
  try {
    await fetcher.refreshAll();
    assert.equal(reported.length, 1, 'the first list is reported');
    await fetcher.refreshAll();
    await fetcher.refreshAll();
    assert.equal(reported.length, 1, 'the same list fetched twice more: not reported again');
    fetcher.offer(url, crl);
    assert.deepEqual(peers, [], "a peer's copy of the list in use changes nothing");
  } finally {
    fetcher.stop();
  }
});

test('a floor raised while a bundle is verified off the main thread refuses it when it would be swapped in', async () => {
  const op = generateSigningKeys();
  const [key, pub] = [readPrivateKey(op.privatePem), readPublicKey(op.publicPem)];
  const T0 = Date.parse('2026-12-01T10:00:00.000Z');
  const one = signBundle(bundleOf([openApi('a', '/a/', 'http://127.0.0.1:9')]), key, T0);
  const two = signBundle(bundleOf([openApi('a', '/a/', 'http://127.0.0.1:9'), openApi('b', '/b/', 'http://127.0.0.1:9')]), key, T0 + 60_000);
  const store = BundleStore.create(one, 'f', (b: { digest: string }) => b.digest, {
    publicKey: pub,
    workerMinBytes: 0,
    buildCompact: (c: { digest: string }) => c.digest,
  });
  const pending = store.reloadAsync(two, 'f');
  // Another worker took a bundle signed at T0+120 s while this one verifies T0+60 s.
  await new Promise((r) => setImmediate(r));
  assert.equal(store.raiseFloor({ signedAt: T0 + 120_000, digest: 'sha256:peer', from: 'the bundle another worker took' }), true);
  const r = await pending;
  assert.equal(r.status, 'failed');
  assert.match(r.status === 'failed' ? r.error.message : '', /before the bundle another worker took/);
  assert.equal(store.info().signature?.signedAt, T0, 'the bundle serving stays');
});

test('the primary keeps the newest bundle and CRL per URL the workers took, to replay to a worker that starts later', () => {
  const taken = new TakenSoFar();
  const floor = (thisUpdate: number, number: string) => ({ ca: 'ca', thisUpdate, number });
  taken.add({ bundle: { signedAt: 2, digest: 'sha256:b', keyId: 'k' } });
  taken.add({ bundle: { signedAt: 1, digest: 'sha256:a', keyId: 'k' } });
  taken.add({ crl: { url: 'u', floor: floor(5, '05'), der: 'new' } });
  taken.add({ crl: { url: 'u', floor: floor(4, '04'), der: 'old' } });
  taken.add({ crl: { url: 'v', floor: floor(1, '01') } }); // no bytes: nothing to replay
  assert.deepEqual(taken.messages(), [
    { type: 'mtlsgate:floor', bundle: { signedAt: 2, digest: 'sha256:b', keyId: 'k' } },
    { type: 'mtlsgate:floor', crl: { url: 'u', floor: floor(5, '05'), der: 'new' } },
  ]);
});

test('--state-dir keeps a floor per crl_url even when two differ only in what redaction hides, and writes no secret', () => {
  const [one, two] = ['https://pki.example/crl?part=1&sig=TOPSECRET', 'https://pki.example/crl?part=2&sig=TOPSECRET'];
  const [k1, k2] = [crlStateKey(one), crlStateKey(two)];
  // Before, both were kept as https://pki.example/crl?REDACTED: one floor for two lists, so after
  // a restart part 2's first CRL was refused as older than part 1's.
  assert.notEqual(k1, k2);
  for (const k of [k1, k2]) {
    assert.match(k, /^https:\/\/pki\.example\/crl\?REDACTED sha256:[0-9a-f]{16}$/);
    assert.doesNotMatch(k, /TOPSECRET|part/);
  }
  assert.equal(crlStateKey('http://pki.example/internal.crl'), 'http://pki.example/internal.crl', 'nothing hidden: the URL itself');
});

test('one floor per CA of a crl_url (section 46): another CA takes no place of the first, a ninth CA is not recorded; the state file reads both forms', async () => {
  const taken = new TakenSoFar();
  const floor = (ca: string, number: string) => ({ ca, thisUpdate: 1, number });
  taken.add({ crl: { url: 'u', floor: floor('real', '05'), der: 'real' } });
  taken.add({ crl: { url: 'u', floor: floor('own', 'ff'), der: 'own' } });
  for (let i = 0; i < 8; i++) taken.add({ crl: { url: 'u', floor: floor(`more${i}`, '01'), der: `more${i}` } });
  const kept = taken.messages().map((m) => m.crl?.der);
  assert.deepEqual(kept, ['real', 'own', 'more0', 'more1', 'more2', 'more3', 'more4', 'more5'], 'the first eight CAs, the real one among them');

  const dir = mkdtempSync(join(tmpdir(), 'floors-'));
  try {
    chmodSync(dir, 0o700);
    const ca = (c: string) => c.repeat(64);
    const { writer } = await startState(dir, undefined, undefined, (m) => assert.fail(m));
    assert.ok(writer);
    writer.crlTaken('http://pki.example/a.crl', { ca: ca('a'), thisUpdate: Date.UTC(2026, 0, 1), number: '05' });
    writer.crlTaken('http://pki.example/b.crl', { ca: ca('b'), thisUpdate: Date.UTC(2026, 0, 1), number: '07' });
    writer.crlTaken('http://pki.example/b.crl', { ca: ca('c'), thisUpdate: Date.UTC(2026, 0, 2), number: 'ff' });
    await writer.flushed();
    const doc = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8'));
    // One CA: the object earlier versions read; two: an array.
    assert.deepEqual(doc.crls['http://pki.example/a.crl'], { ca: `sha256:${ca('a')}`, this_update: '2026-01-01T00:00:00.000Z', crl_number: '05' });
    assert.deepEqual(
      doc.crls['http://pki.example/b.crl'].map((f: { ca: string }) => f.ca),
      [`sha256:${ca('b')}`, `sha256:${ca('c')}`],
    );
    const read = (await startState(dir, undefined, undefined, (m) => assert.fail(m))).crlFloors;
    assert.equal(read.get(crlFloorKey('http://pki.example/b.crl', ca('b')))?.number, '07');
    assert.equal(read.get(crlFloorKey('http://pki.example/b.crl', ca('c')))?.number, 'ff');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('what the primary keeps of CRLs is bounded (section 49): a URL past the count and bytes past the total are refused, a newer list of a kept one is not', () => {
  const taken = new TakenSoFar(2, 10);
  const crl = (url: string, thisUpdate: number, der: string) => ({ url, floor: { ca: 'ca', thisUpdate, number: null }, der });
  const keep = (c: ReturnType<typeof crl>) => {
    const why = taken.crlRefusal(c);
    if (why === null) taken.add({ crl: c });
    return why;
  };
  assert.equal(keep(crl('u', 1, 'aaaa')), null);
  assert.equal(keep(crl('v', 1, 'bbbb')), null);
  assert.match(String(keep(crl('w', 1, 'c'))), /^CRL of w: 2 crl_urls are kept already, not one more/);
  // A newer list of a kept URL replaces its bytes: 4 + 6 = 10 fits, 4 + 7 does not.
  assert.equal(keep(crl('u', 2, 'aaaaaa')), null);
  assert.match(String(keep(crl('v', 2, 'bbbbbbb'))), /^CRL of v: keeping it would hold 13 bytes of CRLs, more than 10$/);
  assert.deepEqual(
    taken.messages().map((m) => m.crl?.der),
    ['aaaaaa', 'bbbb'],
  );
});
