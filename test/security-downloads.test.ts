// Downloads the gateway makes while it runs (a bundle or shard from a URL, a CRL from a
// crl_url) attacked by whoever answers them: an endless body is cut at a ceiling instead of
// being read into memory until the process dies.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { MAX_BUNDLE_BYTES, MAX_CRL_BYTES } from '../common/size-limits.ts';
import { startCrlFetcher } from '../runtime/crl-fetcher.ts';
import { fetchBundle } from '../runtime/poll-url.ts';
import { CrlStore } from '../runtime/revocation.ts';
import { buildSnapshot } from '../runtime/snapshot.ts';
import { buildBundle } from './helpers/bundle-builder.ts';
import { waitFor } from './helpers/ops-fixtures.ts';

const MiB = 1 << 20;

describe('downloads are read up to a ceiling', () => {
  let server: Server;
  let base: string;
  /** Bytes the server managed to write before the client hung up, per request. */
  const written: number[] = [];

  before(async () => {
    // Answers 200 with an endless body (no Content-Length), 64 KiB at a time, until the client leaves.
    server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const chunk = Buffer.alloc(64 * 1024, 0x30);
      let sent = 0;
      let stop = false;
      res.on('close', () => {
        stop = true;
        written.push(sent);
      });
      const pump = () => {
        while (!stop && sent < 256 * MiB) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  it('the ceilings: a bundle of 1,000,000 keys and a CRL of 1,000,000 entries fit', () => {
    assert.ok(MAX_BUNDLE_BYTES >= 4 * 100 * MiB);
    assert.ok(MAX_CRL_BYTES >= 40 * MiB);
  });

  it('a bundle URL whose body does not end is refused at the ceiling, and the download stops there', async () => {
    written.length = 0;
    await assert.rejects(fetchBundle(`${base}/bundle.json`, null, 30_000, 2 * MiB), /refused: it is larger than 2097152 bytes/);
    // The connection is dropped once over the ceiling: the server could not write the 256 MiB it wanted to.
    // Waited for, not slept on: a loaded machine took more than 200 ms to close the server's side.
    await waitFor('the server to see the client leave', () => written.length === 1, 15_000);
    assert.ok(written.length === 1 && written[0] < 64 * MiB, `server wrote ${written[0]} bytes`);
  });

  it('a crl_url whose body does not end is refused at the ceiling; the CRL stays as it was', async () => {
    written.length = 0;
    const store = new CrlStore();
    store.setUrls([`${base}/ca.crl`]);
    const events: Array<{ result: string; detail?: string }> = [];
    const snapshot = buildSnapshot(buildBundle([]));
    const fetcher = startCrlFetcher({ snapshot: () => snapshot, store, maxBytes: 2 * MiB, onEvent: (e) => events.push(e) });
    try {
      await fetcher.refreshAll();
      assert.equal(events.at(-1)?.result, 'error');
      assert.match(events.at(-1)?.detail ?? '', /larger than 2097152 bytes/);
      assert.equal(store.byUrl.get(`${base}/ca.crl`)?.fetchedAt, null);
    } finally {
      fetcher.stop();
    }
  });
});
