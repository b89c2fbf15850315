// The request log line is written by hand (runtime/log.ts) for speed: it must stay exactly
// what pino writes for the same fields, for any string a client can put in a path or header.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import fc from 'fast-check';
import pino from 'pino';
import { createLogger, logRequest } from '../runtime/log.ts';

function capture(): { stream: PassThrough; lines: string[] } {
  const stream = new PassThrough();
  const lines: string[] = [];
  stream.on('data', (chunk: Buffer) => lines.push(...chunk.toString('utf8').split('\n').filter(Boolean)));
  return { stream, lines };
}

const tick = () => new Promise((r) => setImmediate(r));

test('the hand-written request line is what pino writes for the same fields, for any strings', async () => {
  const ours = capture();
  const logger = createLogger({ destination: ours.stream });
  const theirs = capture();
  // The reference: pino with the same base, level label and time format, given the fields.
  const reference = pino(
    { base: { service: 'mtlsgate' }, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label) => ({ level: label }) } },
    theirs.stream,
  );
  const field = fc.option(fc.string({ unit: 'binary' }), { nil: null });
  const records = fc.sample(
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
  for (const r of records) {
    logRequest(logger, r);
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
      },
      'request',
    );
  }
  await tick();
  assert.equal(ours.lines.length, records.length);
  const withoutTime = (line: string) => line.replace(/"time":"[^"]*"/, '"time":""');
  for (let i = 0; i < records.length; i++) {
    assert.equal(withoutTime(ours.lines[i]), withoutTime(theirs.lines[i]), `record ${i}`);
    assert.match(ours.lines[i], /"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"/);
  }
  assert.ok(!ours.lines.join('\n').includes('SECRET'));
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
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', childScript(logFile, lines)], {
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

test('to a pipe the writes stay asynchronous and every line arrives whole at exit', async () => {
  const r = await runChild('pipe', '', 200);
  assert.equal(r.code, 0, r.err);
  assertWholeLines(r.out, 200);
});
