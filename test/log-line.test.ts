// The request log line is written by hand (runtime/log.ts) for speed: it must stay exactly
// what pino writes for the same fields, for any string a client can put in a path or header.
import assert from 'node:assert/strict';
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

test('no request line below level info', async () => {
  const ours = capture();
  const logger = createLogger({ destination: ours.stream, level: 'warn' });
  logRequest(logger, { api: 'a', key: null, cert: null, status: 200, code: null, method: 'GET', path: '/', durationMs: 1, remote: '::1' });
  await tick();
  assert.deepEqual(ours.lines, []);
});
