// docs/security.md section 33: the HTTP/2 rapid-reset budget (section 31) is the operator's:
// `--http2-max-resets N` per `--http2-reset-period DURATION` (or their MTLSGATE_* variables).
// The built CLI serves a compiled bundle; test/helpers/raw-h2.ts opens streams and resets them
// in the same write (CVE-2023-44487) over real TLS.
// Before: the budget was the constants 100 a minute in runtime/http2.ts, and serve refused both
// flags as unknown (exit 2).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { serveConfig } from '../cli/commands/serve.ts';
import type { DemoPki } from '../cli/pki.ts';
import { compileYaml, recordingUpstream, type RecordingUpstream, type Served, serveBundle } from './helpers/e2e.ts';
import { tempDir, waitFor } from './helpers/ops-fixtures.ts';
import { H2_ERROR, rawH2, type RawH2 } from './helpers/raw-h2.ts';
import { demoPki } from './helpers/serve-fixtures.ts';

const t = tempDir('h2-reset-budget');
let pki: DemoPki;
let upstream: RecordingUpstream;
let bundle: string;
const served: Served[] = [];
const clients: RawH2[] = [];

before(async () => {
  pki = await demoPki(t.dir);
  upstream = await recordingUpstream();
  bundle = await compileYaml(join(t.dir, 'open'), {
    'api.yaml': `kind: api\nid: open\nproxy:\n  listen_path: /open/\n  target_url: ${upstream.url}\nuse_keyless: true\n`,
  });
});
after(async () => {
  for (const c of clients) c.close();
  for (const s of served) await s.stop();
  await upstream?.close();
  t.cleanup();
});

async function serve(extra: string[], env: NodeJS.ProcessEnv = process.env): Promise<Served> {
  const s = await serveBundle(bundle, pki, extra, undefined, env);
  served.push(s);
  return s;
}

async function client(s: Served): Promise<RawH2> {
  const c = await rawH2({ port: s.port, ca: pki.ca.certPem });
  clients.push(c);
  return c;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Opens and resets streams (HEADERS + RST_STREAM in one write), `batch` at a time with `pauseMs`
 * between batches, `count` in all or until a GOAWAY; returns the next free stream id.
 */
async function rapidResets(c: RawH2, firstId: number, count: number, batch: number, pauseMs: number): Promise<number> {
  let id = firstId;
  for (let sent = 0; sent < count && c.goaway === null && !c.closed; ) {
    for (let i = 0; i < batch && sent < count; i++, sent++, id += 2) c.openAndReset(id, `/open/rr${id}`);
    await c.flushed();
    await sleep(pauseMs);
  }
  return id;
}

async function rapidResetCloses(admin: string): Promise<number> {
  const text = await (await fetch(`${admin}/metrics`)).text();
  const m = /^mtlsgate_connections_refused_total\{reason="http2_rapid_reset"\} (\d+)/m.exec(text);
  return m === null ? 0 : Number(m[1]);
}

describe('--http2-max-resets', () => {
  it('--http2-max-resets 10: the 11th stream reset within a second of opening gets GOAWAY(ENHANCE_YOUR_CALM), the default (100) lets the same 40 pass', async () => {
    const [low, dflt] = await Promise.all([serve(['--http2-max-resets', '10']), serve([])]);
    const lowClient = await client(low);
    await rapidResets(lowClient, 1, 40, 5, 30);
    await waitFor('GOAWAY', () => lowClient.goaway !== null, 15_000);
    assert.equal(lowClient.goaway, H2_ERROR.ENHANCE_YOUR_CALM);
    // The budget (10) and the batch of 5 that spent it: streams 1..29 at most, not the 100 (ids up to 201) of the default.
    assert.ok(lowClient.goawayLastStream !== null && lowClient.goawayLastStream <= 29, `GOAWAY after stream ${lowClient.goawayLastStream}`);
    await waitFor('the connection to close', () => lowClient.closed, 15_000);
    assert.equal(await rapidResetCloses(low.admin), 1);

    const dfltClient = await client(dflt);
    const next = await rapidResets(dfltClient, 1, 40, 5, 30);
    dfltClient.open(next, 'GET', '/open/after');
    await waitFor('the request after the resets to be answered', () => dfltClient.answered.has(next), 15_000);
    assert.equal(dfltClient.goaway, null);
    assert.equal(dfltClient.closed, false);
    assert.equal(await rapidResetCloses(dflt.admin), 0);
  });

  it('--http2-reset-period (MTLSGATE_HTTP2_RESET_PERIOD=1s): 5 resets a second refill the budget of 5; per the default minute, the same client is cut', async () => {
    const [perSecond, perMinute] = await Promise.all([
      serve(['--http2-max-resets', '5'], { ...process.env, MTLSGATE_HTTP2_RESET_PERIOD: '1s' }),
      serve(['--http2-max-resets', '5']),
    ]);
    // 4 rounds of 4 resets, 1.2 s apart: 16 in all, never more than 4 within a refill period of 1 s.
    const run = async (s: Served) => {
      const c = await client(s);
      let id = 1;
      for (let round = 0; round < 4 && c.goaway === null; round++) {
        id = await rapidResets(c, id, 4, 4, 0);
        await sleep(1_200);
      }
      return { c, id };
    };
    const [second, minute] = await Promise.all([run(perSecond), run(perMinute)]);
    assert.equal(second.c.goaway, null, 'refilled at 5 a second');
    second.c.open(second.id, 'GET', '/open/after');
    await waitFor('the request after the resets to be answered', () => second.c.answered.has(second.id), 15_000);
    await waitFor('GOAWAY', () => minute.c.goaway !== null, 15_000);
    assert.equal(minute.c.goaway, H2_ERROR.ENHANCE_YOUR_CALM);
  });
});

describe('serve flags', () => {
  const base = ['--bundle', 'b.json', '--tls-cert', 'c', '--tls-key', 'k'];

  it('--http2-max-resets (or MTLSGATE_HTTP2_MAX_RESETS) is a whole number from 1, default 100; --http2-reset-period a duration from 1s, default 1m', () => {
    assert.deepEqual([serveConfig(base, {}).config.http2MaxResets, serveConfig(base, {}).config.http2ResetPeriodMs], [100, 60_000]);
    const given = serveConfig([...base, '--http2-max-resets', '1000', '--http2-reset-period', '10s'], {}).config;
    assert.deepEqual([given.http2MaxResets, given.http2ResetPeriodMs], [1000, 10_000]);
    const fromEnv = serveConfig(base, { MTLSGATE_HTTP2_MAX_RESETS: '1', MTLSGATE_HTTP2_RESET_PERIOD: '1m30s' }).config;
    assert.deepEqual([fromEnv.http2MaxResets, fromEnv.http2ResetPeriodMs], [1, 90_000]);
    assert.equal(serveConfig([...base, '--http2-max-resets', '7'], { MTLSGATE_HTTP2_MAX_RESETS: '9' }).config.http2MaxResets, 7, 'the flag wins');
  });

  it('0 resets is refused, saying the budget has no off; other bad values name the flag or variable and the value', () => {
    assert.throws(
      () => serveConfig([...base, '--http2-max-resets', '0'], {}),
      /^UsageError: --http2-max-resets must be at least 1, not "0": the rapid-reset defence \(CVE-2023-44487\) has no off/,
    );
    assert.throws(() => serveConfig(base, { MTLSGATE_HTTP2_MAX_RESETS: '00' }), /MTLSGATE_HTTP2_MAX_RESETS must be at least 1, not "00"/);
    assert.throws(() => serveConfig([...base, '--http2-max-resets', 'ten'], {}), /--http2-max-resets must be a positive whole number, not "ten"/);
    assert.throws(() => serveConfig([...base, '--http2-max-resets=-5'], {}), /--http2-max-resets must be a positive whole number, not "-5"/);
    assert.throws(() => serveConfig([...base, '--http2-max-resets', '2.5'], {}), /--http2-max-resets must be a positive whole number, not "2.5"/);
    assert.throws(() => serveConfig([...base, '--http2-reset-period', '60'], {}), /--http2-reset-period "60" has no unit: write 60s/);
    assert.throws(() => serveConfig([...base, '--http2-reset-period', '0'], {}), /--http2-reset-period must be a positive duration/);
    assert.throws(
      () => serveConfig(base, { MTLSGATE_HTTP2_RESET_PERIOD: '500ms' }),
      /MTLSGATE_HTTP2_RESET_PERIOD must be at least 1s, not "500ms": a reset counts within 1 s of its stream's opening/,
    );
  });
});
