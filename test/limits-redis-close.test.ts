// A process that closes its Redis limiter while Redis is down exits at once. Before: ioredis's
// disconnect() armed a 2 s timer to destroy a socket that was already closed, and the process
// (a `serve` stopping, a CLI run, a test) lived 2 s longer (runtime/limits/redis-connection.ts).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { RedisServer } from './helpers/redis.ts';
import { waitFor } from './helpers/ops-fixtures.ts';
import { TS_LOADER } from './helpers/cli.ts';

let server: RedisServer;
before(async () => {
  server = await RedisServer.start();
});
after(() => server?.close());

test('a process that closed its Redis limiter after Redis went down exits at once, not 2 s later', async () => {
  const child = spawn(process.execPath, ['--import', TS_LOADER, join(import.meta.dirname, 'helpers', 'limiter-close.ts'), server.url], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  let closedAt = 0;
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString();
    if (closedAt === 0 && out.includes('closed\n')) closedAt = Date.now();
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  await waitFor('the limiter is connected', () => out.includes('ready\n'), 30_000);
  await server.stop();
  const code = await exited;
  assert.equal(code, 0, out);
  assert.ok(closedAt > 0, out);
  // Before: 2,000 ms and more (ioredis's disconnectTimeout); now the next turn of the loop.
  const lived = Date.now() - closedAt;
  assert.ok(lived < 1_000, `the process lived ${lived} ms after close() resolved`);
});
