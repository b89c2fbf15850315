// What a full compile costs a running portal after its start: a change to anything but key files
// (an API, a policy) makes the next page view compile everything again, in the portal's compile
// worker (compiler/full-compile-client.ts). Before session 14 each such compile started its own
// worker thread (a thread, the compiler's modules, the schemas compiled again); since, one
// long-lived worker takes them all. Not part of `npm test`.
//
//   npm run build --silent && node --import tsx bench/portal-recompile.ts [--keys 100] [--rounds 15] [--root DIR]
//
// A small config (one dynamic-mTLS API, a catalog plan, --keys token keys) served by
// `ROOT/dist/mtlsgate.mjs portal` (loopback-only); once its start-up compile is done, each round
// appends a comment to the API file (the live compile then compiles everything) and times GET /
// (the request form, answered after that compile). Reports the median and the spread, and the
// portal's resident memory 1 s after its start-up compile and after the rounds.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';

const { values } = parseArgs({
  options: {
    keys: { type: 'string', default: '100' },
    rounds: { type: 'string', default: '15' },
    root: { type: 'string', default: resolve(import.meta.dirname, '..') },
  },
});
const root = resolve(values.root!);
const cli = join(root, 'dist', 'mtlsgate.mjs');
if (!existsSync(cli)) throw new Error(`${cli} is missing: npm run build in ${root} first`);
const rounds = Number(values.rounds);

const work = mkdtempSync(join(tmpdir(), 'portal-recompile-'));
const config = join(work, 'config');
mkdirSync(join(config, 'keys'), { recursive: true });
const apiFile = join(config, 'api.yaml');
writeFileSync(apiFile, 'kind: api\nid: api-0000\nproxy:\n  listen_path: /api-0000/\n  target_url: http://127.0.0.1:9000\nauth:\n  use_certificate: true\n');
writeFileSync(join(config, 'policy.yaml'), 'kind: policy\nid: bench-self-serve\naccess_rights:\n  api-0000: {}\nportal:\n  name: Bench API\n');
for (let i = 0; i < Number(values.keys); i++) {
  const token = createHash('sha256').update(`token-${i}`).digest('hex');
  writeFileSync(join(config, 'keys', `k${i}.yaml`), `kind: key\nid: k-${i}\ntoken_sha256: ${token}\napply_policies: [bench-self-serve]\n`);
}

const child = spawn(process.execPath, [cli, 'portal', '--config', config, '-o', join(work, 'bundle.json'), '--listen', '127.0.0.1:0'], {
  stdio: ['ignore', 'pipe', 'pipe'],
});
let log = '';
child.stdout.on('data', (c: Buffer) => (log += c.toString()));
child.stderr.on('data', (c: Buffer) => (log += c.toString()));
try {
  let base: string | undefined;
  while (!(base = /"url":"(http:\/\/[^"]+?)\/?"/.exec(log)?.[1]) || !/start-up compile is done/.test(log)) {
    if (child.exitCode !== null) throw new Error(`portal exited ${child.exitCode}:\n${log}`);
    await sleep(10);
  }
  // What the portal holds once started and idle: since session 15 its compile worker is ended
  // when the start-up compile is done (before, it stayed up to 10 minutes).
  await sleep(1000);
  const startedRssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1]);
  const times: number[] = [];
  for (let i = 0; i < rounds; i++) {
    appendFileSync(apiFile, `# round ${i}\n`);
    const t = performance.now();
    const page = await fetch(`${base}/`);
    const text = await page.text();
    times.push(performance.now() - t);
    if (page.status !== 200 || !text.includes('name="policy"')) throw new Error(`GET / answered ${page.status}, not the form`);
  }
  // An unchanged view: what a page costs without a compile.
  const t = performance.now();
  await (await fetch(`${base}/`)).text();
  const unchanged = performance.now() - t;
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1]);
  const sorted = [...times].sort((a, b) => a - b);
  const ms = (v: number) => Math.round(v);
  console.log(
    `${root}: ${values.keys} keys, ${rounds} full compiles after an API change (GET /): median ${ms(sorted[sorted.length >> 1]!)} ms, ` +
      `min ${ms(sorted[0]!)}, max ${ms(sorted[sorted.length - 1]!)} (first ${ms(times[0]!)}); a view without a change ${ms(unchanged)} ms; ` +
      `portal RSS 1 s after its start-up compile ${Math.round(startedRssKb / 1024)} MB, after the rounds ${Math.round(rssKb / 1024)} MB; load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`,
  );
} finally {
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
  rmSync(work, { recursive: true, force: true });
}
