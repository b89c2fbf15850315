// The file watcher on real files: in-place write, atomic rename, ConfigMap symlink swap, and a
// symlink to a file in another directory. Each case waits for the event it causes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { watchFile } from '../runtime/watch-file.ts';
import { tempDir, waitFor } from './helpers/ops-fixtures.ts';

/** Starts a watch on `file` that records what the file held at each notification. */
async function recordingWatch(file: string) {
  const seen: string[] = [];
  const watch = watchFile(file, () => seen.push(readFileSync(file, 'utf8')), { debounceMs: 30 });
  await watch.ready;
  return { seen, watch };
}

test('in-place writes and atomic renames are both seen', async () => {
  const t = tempDir('watch');
  const file = join(t.dir, 'bundle.json');
  writeFileSync(file, 'v1');
  const { seen, watch } = await recordingWatch(file);
  try {
    writeFileSync(file, 'v2');
    await waitFor('in-place write', () => seen.includes('v2'));
    writeFileSync(join(t.dir, 'bundle.json.tmp'), 'v3');
    renameSync(join(t.dir, 'bundle.json.tmp'), file);
    await waitFor('rename over the file', () => seen.includes('v3'));
    // After the rename the watch is on a new inode; it must keep working.
    writeFileSync(file, 'v4');
    await waitFor('in-place write after a rename', () => seen.includes('v4'));
    const before = seen.length;
    writeFileSync(join(t.dir, 'unrelated.txt'), 'x');
    writeFileSync(file, 'v5');
    await waitFor('v5', () => seen.includes('v5'));
    assert.ok(seen.length - before <= 2, `an unrelated file should not cause reloads (saw ${JSON.stringify(seen.slice(before))})`);
    // chokidar drops a second change within 50 ms and a second directory scan within 1 s: the
    // watcher must not, or the older of two quick writes would keep serving.
    writeFileSync(file, 'v6');
    await waitFor('v6', () => seen.includes('v6'));
    writeFileSync(join(t.dir, 'bundle.json.tmp'), 'v7');
    renameSync(join(t.dir, 'bundle.json.tmp'), file);
    await waitFor('a rename right after a write', () => seen.includes('v7'));
    writeFileSync(join(t.dir, 'bundle.json.tmp'), 'v8');
    renameSync(join(t.dir, 'bundle.json.tmp'), file);
    await waitFor('a second rename within a second', () => seen.includes('v8'));
  } finally {
    await watch.close();
    t.cleanup();
  }
});

test('a Kubernetes ConfigMap symlink swap is seen, twice in a row', async () => {
  const t = tempDir('configmap');
  const version = (v: string) => {
    mkdirSync(join(t.dir, `..2026_${v}`));
    writeFileSync(join(t.dir, `..2026_${v}`, 'bundle.json'), v);
  };
  version('a');
  symlinkSync('..2026_a', join(t.dir, '..data'));
  symlinkSync('..data/bundle.json', join(t.dir, 'bundle.json'));
  const file = join(t.dir, 'bundle.json');
  const { seen, watch } = await recordingWatch(file);
  try {
    for (const v of ['b', 'c']) {
      version(v);
      symlinkSync(`..2026_${v}`, join(t.dir, '..data_tmp'));
      renameSync(join(t.dir, '..data_tmp'), join(t.dir, '..data'));
      await waitFor(`swap to ${v}`, () => seen.includes(v));
    }
  } finally {
    await watch.close();
    t.cleanup();
  }
});

test('a symlink into another directory: writes and renames at the target are seen', async () => {
  const links = tempDir('links');
  const targets = tempDir('targets');
  const target = join(targets.dir, 'current.json');
  writeFileSync(target, 't1');
  symlinkSync(target, join(links.dir, 'bundle.json'));
  const { seen, watch } = await recordingWatch(join(links.dir, 'bundle.json'));
  try {
    writeFileSync(target, 't2');
    await waitFor('write at the target', () => seen.includes('t2'));
    writeFileSync(join(targets.dir, 'current.json.tmp'), 't3');
    renameSync(join(targets.dir, 'current.json.tmp'), target);
    await waitFor('rename at the target', () => seen.includes('t3'));
  } finally {
    await watch.close();
    links.cleanup();
    targets.cleanup();
  }
});

test('a log file appended next to the bundle brings no reload, and the bundle is still followed', async () => {
  const t = tempDir('neighbour');
  const file = join(t.dir, 'bundle.json');
  writeFileSync(file, 'b1');
  const { seen, watch } = await recordingWatch(file);
  try {
    // `serve > gateway.log` beside the bundle: a write per batch of request lines.
    const log = join(t.dir, 'gateway.log');
    for (let i = 0; i < 200; i++) appendFileSync(log, `{"msg":"request","n":${i}}\n`);
    writeFileSync(join(t.dir, 'gateway.log.1'), 'rotated');
    writeFileSync(file, 'b2');
    await waitFor('the bundle write after the log writes', () => seen.includes('b2'));
    // A notification caused by the log would have read b1 (a busy machine may split b2's events in two).
    assert.ok(
      seen.every((v) => v === 'b2'),
      `only the bundle write notifies (saw ${JSON.stringify(seen)})`,
    );
  } finally {
    await watch.close();
    t.cleanup();
  }
});

test('a file renamed into place is taken at once; the quiet time is waited out only when the early read did not take', async () => {
  const t = tempDir('early');
  const file = join(t.dir, 'bundle.json');
  writeFileSync(file, 'e1');
  const early: string[] = [];
  const late: string[] = [];
  let takes = true;
  // A quiet time far longer than the waits below: what is seen within them came early.
  const watch = watchFile(file, () => late.push(readFileSync(file, 'utf8')), {
    debounceMs: 60_000,
    onEarly: async () => {
      early.push(readFileSync(file, 'utf8'));
      return takes;
    },
  });
  await watch.ready;
  try {
    writeFileSync(join(t.dir, 'bundle.json.tmp'), 'e2');
    renameSync(join(t.dir, 'bundle.json.tmp'), file);
    await waitFor('the rename taken before the quiet time', () => early.includes('e2'), 20_000);
    assert.equal(late.length, 0);
  } finally {
    await watch.close();
  }
  // With a short quiet time: an early read that took and no event after it is not read again;
  // one that did not take is.
  const late2: string[] = [];
  let earlyCalls = 0;
  const watch2 = watchFile(file, () => late2.push(readFileSync(file, 'utf8')), {
    debounceMs: 30,
    onEarly: async () => {
      earlyCalls++;
      return takes;
    },
  });
  await watch2.ready;
  try {
    writeFileSync(join(t.dir, 'bundle.json.tmp'), 'e3');
    renameSync(join(t.dir, 'bundle.json.tmp'), file);
    await waitFor('the early call', () => earlyCalls === 1);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(late2.length, 0, 'a rename that took is not read again');
    takes = false;
    writeFileSync(join(t.dir, 'bundle.json.tmp'), 'e4');
    renameSync(join(t.dir, 'bundle.json.tmp'), file);
    await waitFor('the read after the quiet time, as the early one did not take', () => late2.includes('e4'));
    assert.equal(earlyCalls, 2);
  } finally {
    await watch2.close();
    t.cleanup();
  }
});
