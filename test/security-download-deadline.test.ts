// A bundle URL whose server (or whoever is on the path to a plain-HTTP URL) drips the body, one
// byte well inside the per-read timeout each time (docs/security.md section 37). Before, the
// download never ended: polls never overlap, so no later poll or SIGHUP ran either, and the
// gateway stayed on its old bundle without a word. Now the whole download has a deadline
// (DOWNLOAD_DEADLINE_FACTOR times the per-read timeout): the poll fails, says so, and the
// next one runs.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { DOWNLOAD_DEADLINE_FACTOR, fetchBundle, pollUrl } from '../runtime/poll-url.ts';

let server: Server;
let base: string;
let requests = 0;

before(async () => {
  // The first request to /drip gets a byte every 100 ms of a 100,000-byte body; later ones the
  // whole body at once.
  server = createServer((req, res) => {
    requests++;
    if (req.url === '/drip' && requests > 1) return void res.writeHead(200, { 'content-length': '2' }).end('{}');
    res.writeHead(200, { 'content-length': '100000' });
    const timer = setInterval(() => res.write('x'), 100);
    res.on('close', () => clearInterval(timer));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

test('a body that drips inside the per-read timeout is cut at the deadline, with the reason', async () => {
  const started = Date.now();
  await assert.rejects(fetchBundle(`${base}/always`, null, 300, undefined, 1_500), /broke off: the download took longer than 1\.5 s/);
  const took = Date.now() - started;
  assert.ok(took >= 1_400 && took < 4_000, `${took} ms`);
  assert.equal(DOWNLOAD_DEADLINE_FACTOR, 10);
});

test('the poll that dripped fails at 10 times its timeout, and the next poll takes the bundle', async () => {
  requests = 0;
  const errors: string[] = [];
  const taken: string[] = [];
  const started = Date.now();
  const poll = pollUrl(`${base}/drip`, {
    intervalMs: 50,
    etag: null,
    timeoutMs: 250, // each byte comes in 100 ms: never a read timeout; the deadline is 2.5 s
    onBundle: (bytes) => {
      taken.push(bytes.toString());
      return true;
    },
    onError: (err) => errors.push(err.message),
  });
  try {
    while (taken.length === 0 && Date.now() - started < 8_000) await new Promise((r) => setTimeout(r, 50));
  } finally {
    poll.close();
  }
  assert.deepEqual(taken, ['{}'], `no bundle taken in 8 s; errors: ${JSON.stringify(errors)}`);
  assert.equal(errors.length, 1);
  assert.match(errors[0], /took longer than 2\.5 s/);
});
