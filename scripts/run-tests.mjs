// Runs every test/**/*.test.ts with node:test, one process per file, four files at a time, from
// source through scripts/ts-loader.mjs (esbuild's transform of each module, cached; tsx's own
// start-up cost 0.3 CPU-s a file, a minute of CPU a run). Extra arguments filter files by
// substring; `--times` prints every file's wall time at the end (the ten slowest are always
// printed), with the CPU seconds of each file's process tree where /usr/bin/time is installed;
// `--write-times` records the wall times in scripts/test-times.json.
//
// Four at a time: most of a test's wall time is waiting (TLS peers, timeouts, child processes),
// so on this 2-core machine the suite took 500 s at two and 431 s at three, with 1.5 cores busy
// on average (session 13); at 1,087 tests, 626 s at three and 507 s at four, all passing
// (session 16); TEST_CONCURRENCY overrides it.
//
// Longest first: files start in the order of their last recorded wall time
// (scripts/test-times.json), longest first, so the run does not end with one long file alone
// while the other slots are idle. A file not recorded yet starts among the long ones. Node 20's
// own `--test` sorts its files by name, so this runner starts each file itself.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { warm } from './ts-hooks.mjs';

const TIMES_FILE = join(import.meta.dirname, 'test-times.json');
const LOADER = join(import.meta.dirname, 'ts-loader.mjs');
// The directories whose TypeScript the tests load (some load bench/'s generators and reports).
const SOURCE_DIRS = ['access', 'bench', 'bundle', 'cert', 'cli', 'common', 'compiler', 'importer', 'portal', 'runtime', 'scripts', 'support', 'test'];

function walk(dir, suffix = '.test.ts') {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    // Not .work/ and the like: generated trees (bench/.work holds configs of a million keys).
    if (name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p, suffix));
    else if (name.endsWith(suffix) && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

function readTimes() {
  try {
    return JSON.parse(readFileSync(TIMES_FILE, 'utf8'));
  } catch {
    return {};
  }
}

const args = process.argv.slice(2);
const showTimes = args.includes('--times');
const writeTimes = args.includes('--write-times');
const filters = args.filter((a) => !a.startsWith('--'));
const files = walk('test').filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)));
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
const concurrency = Number(process.env.TEST_CONCURRENCY ?? 4);
// The run's time includes the warm-up below.
const started = Date.now();
// Every module transformed once here, in one esbuild service, rather than by the first four
// files at once on a fresh checkout (~1 s when the cache already has them all).
await warm(SOURCE_DIRS.filter((d) => existsSync(d)).flatMap((d) => walk(d, '.ts').map((f) => resolve(f))));
const recorded = readTimes();
const known = Object.values(recorded).sort((a, b) => b - a);
// An unrecorded file (added since the last --write-times) is guessed long: starting a short
// file early costs nothing, finishing a long one last costs its whole length.
const guess = known.length > 0 ? known[Math.floor(known.length / 10)] : 0;
const order = [...files].sort((a, b) => (recorded[b] ?? guess) - (recorded[a] ?? guess));

// GNU time reports the user and system seconds of the file's process and every child it waited
// for (CLI runs, servers, Chromium): what the file costs a machine whose cores are all busy.
const cpuDir = showTimes && existsSync('/usr/bin/time') ? mkdtempSync(join(tmpdir(), 'mtlsgate-test-cpu-')) : null;
const cpu = {};
const counts = { tests: 0, pass: 0, fail: 0, cancelled: 0, skipped: 0, todo: 0 };
const wall = {};
const failed = [];

/** Runs one file in its own process (TAP on stdout); prints its output once it has ended. */
function runFile(file) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const argv = [process.execPath, '--import', LOADER, '--test-reporter=tap', file];
    const cpuFile = cpuDir === null ? null : join(cpuDir, file.replace(/\W/g, '_'));
    if (cpuFile !== null) argv.unshift('/usr/bin/time', '-f', '%U %S', '-o', cpuFile);
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks = [];
    child.stdout.on('data', (c) => chunks.push(c));
    child.stderr.on('data', (c) => chunks.push(c));
    child.on('close', (code, signal) => {
      const seconds = (Date.now() - t0) / 1000;
      wall[file] = seconds;
      if (cpuFile !== null && existsSync(cpuFile)) {
        const [user, sys] = readFileSync(cpuFile, 'utf8').trim().split('\n').pop().split(' ').map(Number);
        cpu[file] = user + sys;
      }
      const out = Buffer.concat(chunks).toString('utf8');
      const tally = {};
      for (const key of Object.keys(counts)) {
        const m = out.match(new RegExp(`^# ${key} (\\d+)$`, 'm'));
        tally[key] = m ? Number(m[1]) : 0;
        counts[key] += tally[key];
      }
      const ok = code === 0 && tally.fail === 0 && tally.cancelled === 0;
      if (!ok) {
        failed.push(file);
        process.stdout.write(`${out}\n`);
      }
      const status = ok ? 'ok' : `FAILED (exit ${signal ?? code})`;
      console.log(`# ${status} ${file}: ${tally.pass}/${tally.tests} passed in ${seconds.toFixed(1)} s`);
      resolve();
    });
  });
}

const queue = [...order];
async function slot() {
  while (queue.length > 0) await runFile(queue.shift());
}
await Promise.all(Array.from({ length: Math.min(concurrency, queue.length) }, slot));

const total = (Date.now() - started) / 1000;
const byTime = Object.entries(wall).sort((a, b) => b[1] - a[1]);
const listed = showTimes ? byTime : byTime.slice(0, 10);
console.log(`# ${showTimes ? 'wall time of every file' : 'slowest files'}:`);
for (const [file, s] of listed) {
  const used = cpu[file] === undefined ? '' : `  (${cpu[file].toFixed(1)} s CPU)`;
  console.log(`#   ${s.toFixed(1).padStart(6)} s  ${file}${used}`);
}
if (cpuDir !== null) {
  const sum = Object.values(cpu).reduce((a, b) => a + b, 0);
  console.log(`# CPU of all files: ${sum.toFixed(0)} s (${(sum / ((Date.now() - started) / 1000)).toFixed(2)} cores busy on average)`);
  rmSync(cpuDir, { recursive: true, force: true });
}
for (const [key, n] of Object.entries(counts)) console.log(`# ${key} ${n}`);
console.log(`# files ${files.length}, ${concurrency} at a time, ${total.toFixed(1)} s`);
if (failed.length > 0) console.log(`# failed files:\n${failed.map((f) => `#   ${f}`).join('\n')}`);

if (writeTimes) {
  // Files that no longer exist are dropped.
  const present = new Set(walk('test'));
  const next = Object.fromEntries(Object.entries(recorded).filter(([f]) => present.has(f)));
  for (const [file, s] of Object.entries(wall)) next[file] = Math.round(s * 10) / 10;
  const sorted = Object.fromEntries(Object.entries(next).sort((a, b) => a[0].localeCompare(b[0])));
  writeFileSync(TIMES_FILE, `${JSON.stringify(sorted, null, 2)}\n`);
}
process.exit(failed.length > 0 ? 1 : 0);
