// runtime/whole-line-writer.ts: the log destination `serve --workers N` shares between processes.
// Lines arrive whole and in order through a regular file (synchronous writes) and a FIFO
// (asynchronous writes); a line longer than one atomic write is cut to fit and stays JSON.
// (Lines of two processes not mixing is tested end to end in workers-cluster.test.ts.)
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, createReadStream, openSync, readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { ATOMIC_WRITE_BYTES, fitLine, WholeLineWriter } from '../runtime/whole-line-writer.ts';
import { tempDir } from './helpers/ops-fixtures.ts';

/** Request-like lines of 40 to ~2,600 bytes, handed over in chunks of 1 to 7 lines. */
function chunks(): { lines: string[]; chunks: string[] } {
  const lines = Array.from({ length: 500 }, (_, i) => JSON.stringify({ i, path: `/p/${'x'.repeat((i * 131) % 2600)}` }));
  const out: string[] = [];
  for (let i = 0; i < lines.length; ) {
    const n = 1 + (i % 7);
    out.push(`${lines.slice(i, i + n).join('\n')}\n`);
    i += n;
  }
  return { lines, chunks: out };
}

const flushed = (w: WholeLineWriter) => new Promise<void>((resolve) => w.flush(() => resolve()));

test('to a regular file: every line whole, in order', async () => {
  const t = tempDir('wlw-file');
  try {
    const file = join(t.dir, 'out.log');
    const fd = openSync(file, 'w');
    const w = new WholeLineWriter(fd);
    const { lines, chunks: cs } = chunks();
    for (const c of cs) w.write(c);
    await flushed(w);
    closeSync(fd);
    assert.deepEqual(readFileSync(file, 'utf8').split('\n').slice(0, -1), lines);
  } finally {
    t.cleanup();
  }
});

test('to a pipe (FIFO): every line whole, in order, written asynchronously', async () => {
  const t = tempDir('wlw-fifo');
  try {
    const fifo = join(t.dir, 'fifo');
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
    let got = '';
    const reader = createReadStream(fifo, 'utf8');
    reader.on('data', (c) => (got += c));
    const ended = new Promise<void>((r) => reader.on('end', () => r()));
    // Opened in the thread pool: a FIFO's open waits for the other end, which the reader opens there too.
    const handle = await open(fifo, 'w');
    const w = new WholeLineWriter(handle.fd);
    const { lines, chunks: cs } = chunks();
    for (const c of cs) w.write(c);
    await flushed(w);
    await handle.close();
    await ended;
    assert.deepEqual(got.split('\n').slice(0, -1), lines);
  } finally {
    t.cleanup();
  }
});

test('a line longer than one atomic write is cut to fit: still one JSON object, every field, truncated: true', () => {
  const bytes = (b: Buffer) => b.length;
  const request = { level: 'info', key: 'k1', status: 200, path: `/api/${'a'.repeat(9000)}`, msg: 'request' };
  const cut = fitLine(Buffer.from(`${JSON.stringify(request)}\n`));
  assert.ok(bytes(cut) <= ATOMIC_WRITE_BYTES && cut.at(-1) === 0x0a);
  const parsed = JSON.parse(cut.toString());
  assert.deepEqual(Object.keys(parsed), [...Object.keys(request), 'truncated']);
  assert.equal(parsed.truncated, true);
  assert.equal(parsed.key, 'k1');
  assert.match(parsed.path, /^\/api\/a+…$/);

  // A nested error stack and multi-byte text.
  const error = { level: 'error', msg: 'reload failed', err: { message: 'é'.repeat(3000), stack: '€'.repeat(5000) } };
  const cut2 = fitLine(Buffer.from(`${JSON.stringify(error)}\n`));
  assert.ok(bytes(cut2) <= ATOMIC_WRITE_BYTES);
  const p2 = JSON.parse(cut2.toString());
  assert.equal(p2.msg, 'reload failed');
  assert.equal(p2.truncated, true);

  // Not JSON: kept inside a JSON line.
  const cut3 = fitLine(Buffer.from(`${'z'.repeat(10_000)}\n`));
  assert.ok(bytes(cut3) <= ATOMIC_WRITE_BYTES);
  assert.match(JSON.parse(cut3.toString()).line, /^z+…$/);
});

test('the writer cuts only lines that do not fit; the others pass unchanged around it', async () => {
  const t = tempDir('wlw-long');
  try {
    const file = join(t.dir, 'out.log');
    const fd = openSync(file, 'w');
    const w = new WholeLineWriter(fd);
    w.write(`{"a":1}\n${JSON.stringify({ path: 'q'.repeat(5000) })}\n{"b":2}\n`);
    await flushed(w);
    closeSync(fd);
    const lines = readFileSync(file, 'utf8').split('\n').slice(0, -1);
    assert.equal(lines.length, 3);
    assert.deepEqual([lines[0], lines[2]], ['{"a":1}', '{"b":2}']);
    assert.equal(JSON.parse(lines[1]).truncated, true);
  } finally {
    t.cleanup();
  }
});
