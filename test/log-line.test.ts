// The request log line is written by hand (runtime/log.ts) for speed: it must stay exactly
// what pino writes for the same fields, for any string a client can put in a path or header.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import fc from 'fast-check';
import pino from 'pino';
import type { RequestRecord } from '../runtime/gateway.ts';
import { createLogger, logRequest } from '../runtime/log.ts';
import { TS_LOADER } from './helpers/cli.ts';

function capture(): { stream: PassThrough; lines: string[] } {
  const stream = new PassThrough();
  const lines: string[] = [];
  stream.on('data', (chunk: Buffer) => lines.push(...chunk.toString('utf8').split('\n').filter(Boolean)));
  return { stream, lines };
}

const tick = () => new Promise((r) => setImmediate(r));

/** pino with the same base, level label and time format: the reference a request line must equal. */
function pinoReference(): { lines: string[]; log: (r: RequestRecord) => void } {
  const theirs = capture();
  const reference = pino(
    { base: { service: 'mtlsgate' }, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label) => ({ level: label }) } },
    theirs.stream,
  );
  const log = (r: RequestRecord) => {
    const q = r.path.indexOf('?');
    reference.info(
      {
        api: r.api,
        key: r.key,
        cert_sha256: r.cert,
        status: r.status,
        code: r.code,
        method: r.method,
        path: q === -1 ? r.path : r.path.slice(0, q),
        duration_ms: Math.round(r.durationMs * 1000) / 1000,
        remote: r.remote,
        ...(r.upstreamError === undefined ? {} : { upstream_error: r.upstreamError }),
      },
      'request',
    );
  };
  return { lines: theirs.lines, log };
}

const withoutTime = (line: string) => line.replace(/"time":"[^"]*"/, '"time":""');

/** Logs `records` through createLogger and through pino; asserts every line equal but for the time. */
async function assertLinesAsPino(records: RequestRecord[]): Promise<string[]> {
  const ours = capture();
  const logger = createLogger({ destination: ours.stream });
  const theirs = pinoReference();
  for (const r of records) {
    logRequest(logger, r);
    theirs.log(r);
  }
  await tick();
  assert.equal(ours.lines.length, records.length);
  for (let i = 0; i < records.length; i++) {
    assert.equal(withoutTime(ours.lines[i]), withoutTime(theirs.lines[i]), `record ${i}: ${JSON.stringify(records[i])}`);
    assert.match(ours.lines[i], /"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"/);
  }
  return ours.lines;
}

test('the hand-written request line is what pino writes for the same fields, for any strings', async () => {
  const field = fc.option(fc.string({ unit: 'binary' }), { nil: null });
  const records: RequestRecord[] = fc.sample(
    fc.record({
      api: field,
      key: field,
      cert: field,
      status: fc.integer({ min: 100, max: 599 }),
      code: field,
      method: fc.string({ unit: 'binary' }),
      path: fc.string({ unit: 'binary' }),
      durationMs: fc.double({ min: 0, max: 1e6, noNaN: true }),
      remote: fc.string({ unit: 'binary' }),
    }),
    300,
  );
  records.push({
    api: 'a"b\\c',
    key: 'Paweł €',
    cert: null,
    status: 200,
    code: null,
    method: 'GET',
    path: '/x\u2028y?token=SECRET',
    durationMs: 1.23456,
    remote: '::1',
  });
  // Repeated values (the quoted form of a field is reused while it does not change), then changes.
  const last = records[records.length - 1];
  records.push({ ...last }, { ...last, key: null, cert: 'ab'.repeat(32) }, { ...last, key: null, cert: 'ab'.repeat(32) }, { ...last, api: null }, { ...last });
  // A failed upstream exchange's cause (upstream_error, after remote), from the same client as
  // lines without one: each line has its own.
  const failed: RequestRecord = { ...last, status: 502, code: 'proxy.upstream_error', upstreamError: 'ECONNREFUSED' };
  records.push(
    failed,
    { ...failed },
    { ...last },
    { ...failed, upstreamError: 'rst 153' },
    { ...failed, status: 504, code: 'proxy.upstream_timeout' },
    { ...last },
  );
  const lines = await assertLinesAsPino(records);
  assert.ok(lines.at(-2)?.endsWith(',"remote":"::1","upstream_error":"ECONNREFUSED","msg":"request"}'), lines.at(-2));
  assert.ok(!lines.join('\n').includes('SECRET'));
});

test('the time field is the ISO time of the moment the line is written, across milliseconds, seconds and years', async () => {
  const ours = capture();
  const logger = createLogger({ destination: ours.stream });
  const record = { api: 'a', key: null, cert: null, status: 200, code: null, method: 'GET', path: '/', durationMs: 1, remote: '::1' };
  const times = [
    0, 1, 999, 1000, 1_700_000_000_000, 1_700_000_000_999, 1_700_000_001_000, 1_700_000_001_000, 1_700_000_000_500, -1, -1500, 253_402_300_799_999,
    253_402_300_800_000, 5,
  ];
  const realNow = Date.now;
  try {
    for (const t of times) {
      Date.now = () => t;
      logRequest(logger, record);
    }
  } finally {
    Date.now = realNow;
  }
  await tick();
  assert.deepEqual(
    ours.lines.map((l) => (JSON.parse(l) as { time: string }).time),
    times.map((t) => new Date(t).toISOString()),
  );
});

test('no request line below level info', async () => {
  const ours = capture();
  const logger = createLogger({ destination: ours.stream, level: 'warn' });
  logRequest(logger, { api: 'a', key: null, cert: null, status: 200, code: null, method: 'GET', path: '/', durationMs: 1, remote: '::1' });
  await tick();
  assert.deepEqual(ours.lines, []);
});

test('a level changed at run time turns request lines off and on again', async () => {
  // logRequest keeps the logger's level beside it (runtime/log.ts RequestLog), updated on pino's 'level-change'.
  const ours = capture();
  const logger = createLogger({ destination: ours.stream });
  const record = (path: string) => ({ api: 'a', key: null, cert: null, status: 200, code: null, method: 'GET', path, durationMs: 1, remote: '::1' });
  logRequest(logger, record('/1'));
  logger.level = 'warn';
  logRequest(logger, record('/2'));
  logger.level = 'debug';
  logRequest(logger, record('/3'));
  await tick();
  assert.deepEqual(
    ours.lines.map((l) => JSON.parse(l).path),
    ['/1', '/3'],
  );
});

test('two loggers in one process: each request line goes to the destination of its own logger', async () => {
  const one = capture();
  const two = capture();
  const first = createLogger({ destination: one.stream });
  const second = createLogger({ destination: two.stream, level: 'warn' });
  const third = createLogger({ destination: two.stream });
  const record = (path: string) => ({ api: 'a', key: null, cert: null, status: 200, code: null, method: 'GET', path, durationMs: 1, remote: '::1' });
  for (let i = 0; i < 3; i++) {
    logRequest(first, record(`/first/${i}`));
    logRequest(second, record(`/second/${i}`));
    logRequest(third, record(`/third/${i}`));
  }
  await tick();
  assert.deepEqual(
    one.lines.map((l) => JSON.parse(l).path),
    ['/first/0', '/first/1', '/first/2'],
  );
  assert.deepEqual(
    two.lines.map((l) => JSON.parse(l).path),
    ['/third/0', '/third/1', '/third/2'],
  );
});

test('lines of gateway-like ASCII values, interleaved clients, any status and duration: what pino writes', async () => {
  // The common case is encoded byte by byte from cached segments (runtime/request-line.ts):
  // printable ASCII, values repeating and alternating between clients, paths with and without
  // a query string, durations to the µs, and the odd status and duration on either side of
  // the fast paths (non-3-digit status, negative, over 2^31 µs).
  const ascii = fc.string({ unit: 'grapheme-ascii', maxLength: 40 });
  const pick = <T>(xs: T[]) => fc.constantFrom(...xs);
  const certs = ['ab'.repeat(32), 'cd'.repeat(32), 'ef'.repeat(32), null];
  const keys = Array.from({ length: 12 }, (_, i) => `key-${i}`);
  const records = fc.sample(
    fc.record({
      api: fc.oneof(pick(['orders', 'payments', null]), ascii),
      key: fc.oneof(pick([...keys, null]), ascii),
      cert: fc.oneof(pick(certs), ascii),
      status: fc.oneof(pick([200, 201, 404, 429, 499, 502]), fc.integer({ min: -5, max: 100_000 })),
      code: fc.oneof(pick([null, 'route.not_found', 'mtls.cert_not_allowed']), ascii),
      method: fc.oneof(pick(['GET', 'POST', 'DELETE']), ascii),
      path: fc.oneof(
        ascii,
        fc.tuple(ascii, ascii).map(([a, b]) => `/${a}?${b}`),
        fc.string({ unit: 'binary', maxLength: 20 }),
      ),
      durationMs: fc.oneof(
        fc.double({ min: 0, max: 5000, noNaN: true }),
        fc.integer({ min: 0, max: 5_000_000 }).map((us) => us / 1000),
        pick([0, -0, 0.0004, 0.0005, 0.001, 0.0015, 0.999, 0.9995, 1, 10.05, 2147483.647, 2147483.6475, 2147483.648, 1e9, 1e21, 1e22, -0.3, -1]),
      ),
      remote: fc.oneof(pick(['127.0.0.1', '::1', '10.0.0.7', '::ffff:192.168.1.20']), ascii),
    }),
    { numRuns: 2000, seed: 16 },
  );
  // One certificate with more keys than a segment chain keeps, in turn (its segments evicted and made again).
  for (let i = 0; i < 40; i++) records.push({ ...records[0], cert: 'ab'.repeat(32), key: keys[i % keys.length], status: 200 + (i % 3) });
  await assertLinesAsPino(records);
});

/**
 * A child process logging `records` through createLogger's default destination (fd 1 on a
 * file: the batched arena of production), then exiting without flushing by hand.
 */
const recordsScript = (recordsFile: string) => `
  const { readFileSync } = await import('node:fs');
  const { createLogger, logRequest } = await import(${JSON.stringify(new URL('../runtime/log.ts', import.meta.url).href)});
  const logger = createLogger();
  for (const r of JSON.parse(readFileSync(${JSON.stringify(recordsFile)}, 'utf8'))) logRequest(logger, r);
`;

test('through the production destination (the batch arena, to a file) the lines are what pino writes', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mtlsgate-log-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'gateway.log');
  const records: RequestRecord[] = Array.from({ length: 3000 }, (_, i) => ({
    api: i % 5 === 0 ? null : `api-${i % 3}`,
    key: i % 4 === 0 ? null : `key-${i % 7}`,
    cert: i % 6 === 0 ? null : `${(i % 5).toString(16)}f`.repeat(32),
    status: [200, 404, 429, 502][i % 4],
    code: i % 4 === 0 ? null : 'route.not_found',
    method: ['GET', 'POST'][i % 2],
    path: i % 11 === 0 ? `/p/${'é'.repeat(i % 50)}?t=x` : `/p/${i}${i % 3 === 0 ? '?token=x' : ''}${'y'.repeat(i % 300)}`,
    durationMs: (i * 7919) / 1000 / ((i % 9) + 1),
    remote: i % 3 === 0 ? '::1' : `10.0.0.${i % 13}`,
  }));
  const recordsFile = join(dir, 'records.json');
  writeFileSync(recordsFile, JSON.stringify(records));
  const fd = openSync(file, 'w');
  const code = await new Promise<number | null>((resolve) => {
    const child = spawn(process.execPath, ['--import', TS_LOADER, '--input-type=module', '-e', recordsScript(recordsFile)], {
      stdio: ['ignore', fd, 'inherit'],
    });
    child.on('close', resolve);
  });
  closeSync(fd);
  assert.equal(code, 0);
  const theirs = pinoReference();
  for (const r of records) theirs.log(r);
  await tick();
  const ours = readFileSync(file, 'utf8').split('\n');
  assert.equal(ours.pop(), '');
  assert.equal(ours.length, records.length);
  for (let i = 0; i < records.length; i++) assert.equal(withoutTime(ours[i]), withoutTime(theirs.lines[i]), `record ${i}`);
});

/**
 * A child process logging through createLogger's default destination (fd 1): `lines` request
 * lines, then it counts the lines already in LOGFILE in the same tick (stderr), then exits
 * without flushing by hand.
 */
const childScript = (logFile: string, lines: number) => `
  const { readFileSync } = await import('node:fs');
  const { createLogger, logRequest } = await import(${JSON.stringify(new URL('../runtime/log.ts', import.meta.url).href)});
  const logger = createLogger();
  for (let i = 0; i < ${lines}; i++)
    logRequest(logger, { api: 'api-' + i, key: null, cert: null, status: 200, code: null, method: 'GET', path: '/p/' + 'x'.repeat(i % 7 === 0 ? 9000 : 40), durationMs: 1, remote: '::1' });
  const onDisk = ${JSON.stringify(logFile)} ? readFileSync(${JSON.stringify(logFile)}, 'utf8').split('\\n').filter(Boolean).length : -1;
  process.stderr.write(JSON.stringify({ onDisk }) + '\\n');
`;

function runChild(stdout: 'pipe' | number, logFile: string, lines: number): Promise<{ out: string; err: string; code: number | null }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', TS_LOADER, '--input-type=module', '-e', childScript(logFile, lines)], {
      stdio: ['ignore', stdout, 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout?.on('data', (d: Buffer) => (out += d));
    child.stderr!.on('data', (d: Buffer) => (err += d));
    child.on('close', (code) => resolve({ out, err, code }));
  });
}

function assertWholeLines(text: string, lines: number): void {
  const got = text.split('\n');
  assert.equal(got.pop(), '', 'the output ends with a newline');
  assert.equal(got.length, lines);
  got.forEach((line, i) => assert.equal(JSON.parse(line).api, `api-${i}`, `line ${i} whole and in order`));
}

test('to a regular file (serve > gateway.log) the batches are written synchronously, every line whole at exit', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mtlsgate-log-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'gateway.log');
  const fd = openSync(file, 'w');
  const r = await runChild(fd, file, 200);
  closeSync(fd);
  assert.equal(r.code, 0, r.err);
  // 200 lines of ~1.5 KiB on average: many ~8 KiB batches were handed over, and each is on disk
  // before the logging call returns (no thread-pool write still in flight).
  const { onDisk } = JSON.parse(r.err.trim().split('\n').at(-1)!);
  assert.ok(onDisk >= 150, `lines on disk in the same tick: ${onDisk}`);
  assertWholeLines(readFileSync(file, 'utf8'), 200);
});

test('the lines of a quiet gateway reach the file within the flush interval, batch after batch (the timer re-armed)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mtlsgate-log-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'gateway.log');
  // Three single lines, each waited for on disk (polled, up to 10 s) before the next: each went
  // out by the 100 ms timer alone, well before exit (the process stays up until the end).
  const script = `
    const { readFileSync } = await import('node:fs');
    const { createLogger, logRequest } = await import(${JSON.stringify(new URL('../runtime/log.ts', import.meta.url).href)});
    const logger = createLogger();
    const seen = [];
    for (let i = 1; i <= 3; i++) {
      logRequest(logger, { api: 'api-' + i, key: null, cert: null, status: 200, code: null, method: 'GET', path: '/', durationMs: 1, remote: '::1' });
      const until = Date.now() + 10_000;
      let n = 0;
      while ((n = readFileSync(${JSON.stringify(file)}, 'utf8').split('\\n').filter(Boolean).length) < i && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      seen.push(n);
    }
    process.stderr.write(JSON.stringify(seen) + '\\n');
    setTimeout(() => {}, 50_000).unref();
  `;
  const fd = openSync(file, 'w');
  const err = await new Promise<string>((resolve) => {
    const child = spawn(process.execPath, ['--import', TS_LOADER, '--input-type=module', '-e', script], { stdio: ['ignore', fd, 'pipe'] });
    let text = '';
    child.stderr!.on('data', (d: Buffer) => (text += d));
    child.on('close', () => resolve(text));
  });
  closeSync(fd);
  assert.deepEqual(JSON.parse(err.trim().split('\n').at(-1)!), [1, 2, 3], err);
});

test('to a pipe the writes stay asynchronous and every line arrives whole at exit', async () => {
  const r = await runChild('pipe', '', 200);
  assert.equal(r.code, 0, r.err);
  assertWholeLines(r.out, 200);
});

/**
 * The lines still gathered when the process exits must reach stdout even when it is a full
 * non-blocking pipe (Node's child-process pipes are O_NONBLOCK). Handed to the thread pool at
 * exit, their write failed with EAGAIN and its retry never ran: CI once saw the last 3 of 200
 * lines missing. Here the reader waits until the child has filled the pipe and logged 3 lines,
 * then 300 ms more, before it reads anything.
 */
const fullPipeExitScript = (sharedStdout: boolean) => `
  const { writeSync } = await import('node:fs');
  const { createLogger, logRequest } = await import(${JSON.stringify(new URL('../runtime/log.ts', import.meta.url).href)});
  const logger = createLogger({ sharedStdout: ${sharedStdout} });
  const filler = Buffer.from(JSON.stringify({ api: 'filler', pad: 'x'.repeat(4000) }) + '\\n');
  let filled = 0;
  for (;;) {
    try { filled += writeSync(1, filler); } catch (err) { if (err.code === 'EAGAIN') break; throw err; }
    if (filled % filler.length !== 0) { writeSync(2, 'partial filler write\\n'); process.exit(3); }
  }
  for (let i = 0; i < 3; i++)
    logRequest(logger, { api: 'api-' + i, key: null, cert: null, status: 200, code: null, method: 'GET', path: '/', durationMs: 1, remote: '::1' });
  process.stderr.write('full\\n');
`;

for (const sharedStdout of [false, true])
  test(`lines gathered at exit reach a full non-blocking pipe (${sharedStdout ? 'workers' : 'one process'})`, async () => {
    const r = await new Promise<{ out: string; err: string; code: number | null }>((resolve) => {
      const child = spawn(process.execPath, ['--import', TS_LOADER, '--input-type=module', '-e', fullPipeExitScript(sharedStdout)], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      let full = false;
      child.stdout!.on('data', (c: Buffer) => (out += c));
      child.stdout!.pause();
      child.stderr!.on('data', (d: Buffer) => {
        err += d;
        if (full || !err.includes('full\n')) return;
        full = true;
        setTimeout(() => child.stdout!.resume(), 300);
      });
      child.on('close', (code) => resolve({ out, err, code }));
    });
    assert.equal(r.code, 0, r.err);
    const lines = r.out.split('\n').filter((line) => !line.startsWith('{"api":"filler"'));
    assertWholeLines(lines.join('\n'), 3);
  });
