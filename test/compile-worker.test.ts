// The portal's long-lived compile worker (compiler/full-compile-client.ts CompileWorker): one
// worker thread for every full compile and catalog compile of a live compile, the bytes and
// diagnostics those of `mtlsgate compile` every time; started again after it died, after IDLE_MS
// idle, or after a compile that grew its heap beyond MAX_IDLE_HEAP_BYTES (ended at its answer);
// close() ends it and the compile in flight at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { CompileStopped, CompileWorker } from '../compiler/full-compile-client.ts';
import { compileDir } from '../compiler/index.ts';
import { LiveCompiler } from '../compiler/live-compile.ts';
import { portalDir } from './helpers/held-portal.ts';
import { waitFor } from './helpers/ops-fixtures.ts';

/** A change to an API file: the live compile compiles everything again (a full compile). */
function touchApis(config: string, n: number): void {
  appendFileSync(join(config, 'apis', 'apis.yaml'), `# change ${n}\n`);
}

/** The worker thread a CompileWorker runs now (tests reach into it to end it from outside). */
function threadOf(w: CompileWorker): Worker {
  const worker = (w as unknown as { worker: Worker | null }).worker;
  if (worker === null) throw new Error('no worker runs');
  return worker;
}

test('one worker thread for every full compile of a live compile (and its catalog compile); each the bytes and diagnostics of `mtlsgate compile`', async () => {
  const { t, config } = await portalDir('compile-worker-reuse');
  const w = new CompileWorker();
  const live = new LiveCompiler(config, {}, w.compile);
  try {
    const catalog = await w.catalog(config, {}, ['/keys/portal/']);
    assert.deepEqual(
      catalog?.plans.map((p) => p.id),
      (await compileDir(config)).portalPlans.map((p) => p.id),
    );
    for (let i = 0; i < 4; i++) {
      if (i > 0) touchApis(config, i);
      const r = await live.compile();
      assert.equal(r.live, 'full');
      const expected = await compileDir(config);
      assert.equal(r.errorCount, 0, JSON.stringify(r.diagnostics));
      assert.deepEqual(r.bundle, expected.bundle);
      assert.deepEqual(r.diagnostics, expected.diagnostics);
    }
    assert.equal(w.starts, 1, 'one worker for the catalog and four full compiles');
    assert.equal(w.running, true, 'it waits for the next one');
  } finally {
    live.close();
    w.close();
    t.cleanup();
  }
});

test('a worker that died is started again at the next compile; one idle for idleMs is ended and started again when needed', async () => {
  const { t, config } = await portalDir('compile-worker-restart');
  const w = new CompileWorker({ idleMs: 300 });
  try {
    await w.compile(config, {});
    const dead = threadOf(w);
    await dead.terminate();
    await waitFor('the worker to be gone', () => !w.running, 10_000);
    touchApis(config, 1);
    const again = await w.compile(config, {});
    assert.equal(w.starts, 2);
    assert.deepEqual(again.bundle, (await compileDir(config)).bundle);
    // Idle: ended after idleMs, started again by the next compile.
    await waitFor('the idle worker to end', () => !w.running, 10_000);
    const third = await w.compile(config, {});
    assert.equal(w.starts, 3);
    assert.deepEqual(third.bundle, again.bundle);
  } finally {
    w.close();
    t.cleanup();
  }
});

test('a worker whose heap a compile grew beyond maxIdleHeapBytes is ended at its answer, not kept idle', async () => {
  const { t, config } = await portalDir('compile-worker-heap');
  const w = new CompileWorker({ maxIdleHeapBytes: 1 });
  try {
    const first = await w.compile(config, {});
    assert.equal(w.running, false, 'ended at its answer');
    const second = await w.compile(config, {});
    assert.equal(w.starts, 2);
    assert.deepEqual(second.bundle, first.bundle);
  } finally {
    w.close();
    t.cleanup();
  }
});

/** A CompileWorker whose first compile is under way, held in the worker once it has read the files. */
async function heldCompile(name: string) {
  const { t, config } = await portalDir(name);
  const hold = new Int32Array(new SharedArrayBuffer(4));
  let loaded = false;
  const w = new CompileWorker({ hold });
  const compiling = w.compile(config, { onLoaded: () => (loaded = true) });
  await waitFor('the worker to read the files', () => loaded, 60_000);
  const release = () => {
    Atomics.store(hold, 0, 1);
    Atomics.notify(hold, 0);
  };
  return { config, w, compiling, release, cleanup: () => t.cleanup() };
}

test('close() ends the worker at once: the compile in flight (held in the worker) rejects with CompileStopped, and every one after', async () => {
  const { config, w, compiling, release, cleanup } = await heldCompile('compile-worker-close');
  try {
    const stoppedAt = performance.now();
    w.close();
    await assert.rejects(compiling, CompileStopped);
    assert.ok(performance.now() - stoppedAt < 2_000);
    assert.equal(w.running, false);
    await assert.rejects(w.compile(config, {}), CompileStopped);
    assert.equal(await w.catalog(config, {}, []), null);
  } finally {
    release();
    cleanup();
  }
});

test('a worker that dies during a compile: that compile is made on this thread (the same bytes), the next one in a new worker', async () => {
  const { config, w, compiling, release, cleanup } = await heldCompile('compile-worker-dies');
  try {
    await threadOf(w).terminate();
    const here = await compiling;
    const expected = (await compileDir(config)).bundle;
    assert.deepEqual(here.bundle, expected);
    release();
    const next = await w.compile(config, {});
    assert.deepEqual(next.bundle, expected);
    assert.equal(w.starts, 2);
  } finally {
    release();
    w.close();
    cleanup();
  }
});

test('release() ends an idle worker at once (the portal after its start-up compile); a compile in flight or queued keeps it; the next compile starts another', async () => {
  const { config, w, compiling, release, cleanup } = await heldCompile('compile-worker-release');
  try {
    const queued = w.catalog(config, {}, ['/keys/portal/']);
    w.release();
    assert.equal(w.running, true, 'a compile in flight keeps it');
    release();
    const first = await compiling;
    w.release();
    assert.equal(w.running, true, 'the catalog compile queued behind it keeps it');
    assert.notEqual(await queued, null);
    w.release();
    assert.equal(w.running, false, 'idle: ended at once, not after IDLE_MS');
    const second = await w.compile(config, {});
    assert.equal(w.starts, 2);
    assert.deepEqual(second.bundle, first.bundle);
  } finally {
    w.close();
    cleanup();
  }
});

test("the catalog compile leaves the keys out: a key's certificate file is not read (gone, the catalog still compiles; the full compile reports it)", async () => {
  const { t, config } = await portalDir('compile-worker-catalog-keys');
  const w = new CompileWorker();
  try {
    const plans = (await compileDir(config)).portalPlans.map((p) => p.id);
    // alice's key (keys/alice.yaml, not a portal key file) names certs/alice.pem.
    rmSync(join(config, 'certs', 'alice.pem'));
    const catalog = await w.catalog(config, {}, ['/keys/portal/']);
    assert.deepEqual(
      catalog?.plans.map((p) => p.id),
      plans,
    );
    assert.deepEqual(Object.keys(catalog!.apis).sort(), ['profile', 'reports']);
    const full = await w.compile(config, {});
    assert.ok(full.errorCount > 0, 'the full compile reads it, and says it is missing');
    assert.ok(full.diagnostics.some((d) => d.file.endsWith('alice.yaml')));
  } finally {
    w.close();
    t.cleanup();
  }
});
