// runtime/crl-worker.ts and runtime/serial-table.ts below serve (docs/security.md section 48):
// a CRL read in the worker thread is taken exactly as one read on the main thread (the same
// serials found and not found, the same refusals and messages), and a peer's copy of a large
// list is taken through the worker too.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, test } from 'node:test';
import { parseCrl } from '../bundle/crl.ts';
import { createCa, issueCert } from '../cli/pki.ts';
import { startCrlFetcher } from '../runtime/crl-fetcher.ts';
import { CrlThread } from '../runtime/crl-worker-client.ts';
import { CrlStore } from '../runtime/revocation.ts';
import { SerialTable, SerialTableBuilder } from '../runtime/serial-table.ts';
import { askedFetcher } from './helpers/crl-fetcher.ts';
import { createCrl } from './helpers/demo-crl.ts';

const servers: Server[] = [];
after(() => {
  for (const s of servers) s.close();
});
async function serve(body: () => Buffer): Promise<string> {
  const server = createServer((_req, res) => res.end(body()));
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/crl`;
}

test('a SerialTable finds exactly the serials a parsed CRL lists (leading zeros, odd lengths, 0)', () => {
  const raw = ['00', '01', '0f', '10', '00ff', '7fffffffffffffffffff', '1100000000000000000000000000000000000001', '0000ab'];
  const builder = new SerialTableBuilder(8);
  for (const hex of raw) {
    const b = Buffer.from(hex, 'hex');
    builder.add(b, 0, b.length);
  }
  const table = new SerialTable(builder.finish());
  assert.equal(table.size, raw.length);
  for (const s of ['0', '1', 'f', '10', 'ff', '7fffffffffffffffffff', '1100000000000000000000000000000000000001', 'ab']) assert.ok(table.has(s), s);
  for (const s of ['', '00', '01', 'F', '2', 'fff', 'a', 'abc', '11']) assert.ok(!table.has(s), s);
});

test('taken through the worker (workerMinBytes 0): the same serials as on the main thread, the same refusals', async () => {
  const [ca, other] = [await createCa('Worker CA'), await createCa('Worker CA')];
  const leaves = await Promise.all(['a', 'b', 'c'].map((n) => issueCert(ca, n)));
  const crl = Buffer.from(await createCrl(ca, [leaves[0], leaves[1]]));
  const othersCrl = Buffer.from(await createCrl(other, [leaves[2]]));
  let answer = othersCrl;
  const url = await serve(() => answer);
  const trusted = [ca, other].map((c) => ({ fingerprint: c.fingerprint, cert: new X509Certificate(c.certPem) }));
  const snapshot = { revocationCas: () => trusted } as never;
  const errors: string[][] = [[], []];
  const fetchers = [0, Number.POSITIVE_INFINITY].map((workerMinBytes, i) => {
    const store = new CrlStore();
    store.setUrls([url], new Map([[url, ca.fingerprint]]));
    const fetcher = startCrlFetcher({
      snapshot: () => snapshot,
      store,
      intervalMs: 600_000,
      retryMs: 600_000,
      workerMinBytes,
      onEvent: (e) => e.detail && errors[i].push(e.detail.replace(/ \(at .*\)$/, '')),
    });
    return { store, fetcher };
  });
  try {
    // Another CA of the same name signed it: refused, naming that CA, in the worker as in the thread.
    for (const { fetcher } of fetchers) await fetcher.refreshAll();
    assert.equal(errors[0].at(-1), errors[1].at(-1));
    assert.match(errors[0].at(-1)!, /it is signed by another CA \(sha256:\S+\) than the one this URL is bound to/);
    answer = Buffer.from('not a CRL');
    for (const { fetcher } of fetchers) await fetcher.refreshAll();
    assert.equal(errors[0].at(-1), errors[1].at(-1));
    assert.match(errors[0].at(-1)!, /is neither a DER CRL nor PEM/);
    answer = crl;
    for (const { fetcher } of fetchers) await fetcher.refreshAll();
    const [inWorker, inThread] = fetchers.map(({ store }) => store.byUrl.get(url)!.serials);
    assert.ok(inWorker instanceof SerialTable, 'the worker path adopted a SerialTable');
    assert.equal(inWorker.size, 2);
    for (const leaf of leaves) {
      const s = new X509Certificate(leaf.certPem).serialNumber.toLowerCase().replace(/^0+/, '');
      assert.equal(inWorker.has(s), inThread.has(s), s);
    }
    assert.deepEqual(
      parseCrl(crl).serials.map((s) => inWorker.has(s)),
      [true, true],
    );
    // A peer's copy goes through the worker too: the same list again changes nothing.
    const generation = fetchers[0].store.generation;
    fetchers[0].fetcher.offer(url, crl);
    await new Promise((r) => setTimeout(r, 2_000));
    assert.equal(fetchers[0].store.generation, generation);
  } finally {
    for (const { fetcher } of fetchers) fetcher.stop();
  }
});

test('N large CRLs taken at once start one CRL thread, which is ended once idle and started again for the next', async () => {
  const ca = await createCa('Pool CA');
  const leaves = await Promise.all(['a', 'b', 'c', 'd'].map((n) => issueCert(ca, n)));
  const crls = await Promise.all(leaves.map((leaf) => createCrl(ca, [leaf])));
  const urls = await Promise.all(crls.map((crl) => serve(() => Buffer.from(crl))));
  const thread = new CrlThread(300);
  // workerMinBytes 0: every list is "large" (each takes the thread path).
  const { store, fetcher, errors } = askedFetcher(urls, ca, { workerMinBytes: 0, thread });
  try {
    await fetcher.refreshAll();
    assert.deepEqual(errors, []);
    for (const url of urls) assert.ok(store.byUrl.get(url)!.serials instanceof SerialTable, url);
    assert.equal(thread.started, 1, `${urls.length} large CRLs, one thread`);
    assert.equal(thread.running, true, 'kept for the next list a while');
    await new Promise((r) => setTimeout(r, 800));
    assert.equal(thread.running, false, 'ended once idle');
    fetcher.offer(urls[0], Buffer.from(crls[0]));
    await new Promise((r) => setTimeout(r, 100));
    await new Promise<void>((resolve) => {
      const wait = () => (thread.running ? setTimeout(wait, 20) : resolve());
      setTimeout(wait, 20);
    });
    assert.equal(thread.started, 2, 'started again for the next list');
  } finally {
    fetcher.stop();
    await thread.stop();
  }
});
