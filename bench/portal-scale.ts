// The portal at scale (issue 15): how long from a request form being sent to (a) the portal's
// answer and (b) the bundle file written, on a big config. Not part of `npm test`.
//
// The config (default: the bench's 1,000-API / 100,000-key config, each key its own certificate
// file, generated into bench/.work/compile/ as the compile bench does) is copied to a temp dir (never changed in place), a catalog plan is added to the copy
// (the generated policies have no `portal:` block), and `dist/mtlsgate.mjs portal` is started on
// it as an operator would start it. Then, per round: GET / (CSRF cookie, token, challenge), sign
// the challenge with the new certificate's private key (node:crypto, as `openssl dgst -sha256
// -sign` does), and POST /requests with a new public certificate (JSON answer). The clock runs
// from the POST being sent. Round 1 is the first request after start ("cold"); later rounds are
// "warm". CPU is the portal process's utime+stime over the same interval (/proc, 10 ms ticks).
//
//   npm run build --silent && node --import tsx bench/portal-scale.ts [--config DIR] [--rounds N]
//     [--cpu-prof DIR] [--no-cache] [--serve] [-- EXTRA PORTAL FLAGS]
// --serve: end to end with the gateway. The copy is compiled first into a sharded bundle
// directory (`compile -o DIR --shards auto`), the portal writes into it (one shard and the
// manifest per key), and `mtlsgate serve --bundle DIR` serves it (bench/lib/portal-gateway.ts);
// per round the clock also runs from the POST being sent to the gateway's first 200 to a client
// presenting the new certificate (a fresh handshake every ~5 ms), then curl confirms it.
// Columns: GET / (the form page, untimed by the target), the answer to the POST (201, JSON), the
// bundle file renamed into place (fs.watch on its directory), the portal's CPU during the POST,
// and the status page a browser is redirected to (GET /requests/<id>?receipt=...).
import { spawn, spawnSync } from 'node:child_process';
import type { Server } from 'node:http';
import { sign } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, watch, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { readWireAt } from '../bundle/read-sharded.ts';
import { keyRow } from '../bundle/wire.ts';
import { createCa, issueCert } from '../cli/pki.ts';
import { generateCompileConfig } from './gen-config.ts';
import { curlStatus, firstOk, type Gateway, startGateway, startUpstreamAt, statusWith } from './lib/portal-gateway.ts';

/** The path of the API the bench's catalog plan grants. */
const API = '/api-0000/';

const ROOT = resolve(import.meta.dirname, '..');
const CLI = join(ROOT, 'dist', 'mtlsgate.mjs');
/** Generated (and kept) by bench/gen-config.ts when --config is not given: ~15 s for 100,000 keys. */
const DEFAULT_CONFIG = join(ROOT, 'bench', '.work', 'compile', 'config-1000-100000');

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    config: { type: 'string', default: DEFAULT_CONFIG },
    rounds: { type: 'string', default: '5' },
    'cpu-prof': { type: 'string' },
    'no-cache': { type: 'boolean', default: false },
    serve: { type: 'boolean', default: false },
  },
});
const rounds = Number(values.rounds);
if (!existsSync(CLI)) throw new Error(`${CLI} is missing: npm run build first`);
if (values.config === DEFAULT_CONFIG) await generateCompileConfig(DEFAULT_CONFIG, { apis: 1000, keys: 100_000 }, (l) => console.log(l));
if (!existsSync(values.config)) throw new Error(`no config at ${values.config} (node --import tsx bench/gen-config.ts DIR 1000 100000 makes one)`);

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK']).stdout?.toString().trim()) || 100;
function cpuMs(pid: number): number {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
}

const work = mkdtempSync(join(tmpdir(), 'portal-scale-'));
const config = join(work, 'config');
const bundle = join(work, 'out', values.serve ? 'bundle' : 'bundle.json');
mkdirSync(join(work, 'out'));
let child: ReturnType<typeof spawn> | undefined;
let gateway: Gateway | undefined;
let upstream: Server | undefined;
try {
  const t0 = performance.now();
  const cp = spawnSync('cp', ['-r', values.config, config]);
  if (cp.status !== 0) throw new Error(`cp failed: ${cp.stderr}`);
  console.log(`copied ${values.config} in ${Math.round(performance.now() - t0)} ms`);
  // The compile bench adds a CA and a revocation document with a big CRL (pki-bench/) to the
  // same generated config; a config with revocation documents is compiled whole on every change
  // (docs/scale.md), which is not the path measured here.
  rmSync(join(config, 'pki-bench'), { recursive: true, force: true });
  // A catalog plan granting one dynamic-mTLS API of the generated config.
  writeFileSync(
    join(config, 'policies-portal.yaml'),
    'kind: policy\nid: bench-self-serve\naccess_rights:\n  api-0000: {}\nportal:\n  name: Bench API\n  description: self-serve plan for the portal bench\n',
  );

  if (values.serve) {
    const c0 = performance.now();
    const compiled = spawnSync(process.execPath, [CLI, 'compile', config, '-o', bundle, '--shards', 'auto'], { encoding: 'utf8' });
    if (compiled.status !== 0) throw new Error(`compile --shards auto failed: ${compiled.stderr}`);
    console.log(`compiled the sharded bundle in ${Math.round(performance.now() - c0)} ms`);
    upstream = await startUpstreamAt(9000); // api-0000's target_url
    const g0 = performance.now();
    gateway = await startGateway(ROOT, bundle, work);
    console.log(`gateway listening after ${Math.round(performance.now() - g0)} ms on port ${gateway.port}`);
  }
  const args = [CLI, 'portal', '--config', config, '-o', bundle, '--listen', '127.0.0.1:0', ...positionals];
  if (!values['no-cache']) args.push('--cache', join(work, 'cache'));
  const nodeArgs = values['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', resolve(values['cpu-prof'])] : [];
  const started = performance.now();
  child = spawn(process.execPath, [...nodeArgs, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const proc = child;
  let out = '';
  proc.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const base = await new Promise<string>((res, rej) => {
    const poll = setInterval(() => {
      const m = /"url":"(http:\/\/[^"]+?)\/?"/.exec(out);
      if (m) {
        clearInterval(poll);
        res(m[1]!);
      } else if (proc.exitCode !== null) {
        clearInterval(poll);
        rej(new Error(`portal exited ${proc.exitCode}:\n${out}`));
      }
    }, 20);
  });
  console.log(`portal listening after ${Math.round(performance.now() - started)} ms (${Math.round(cpuMs(proc.pid!))} ms CPU): ${base}`);
  // The start-up compile runs after the portal listens (catalog pages answer 503 "starting" until it is done).
  while (!/start-up compile is done/.test(out)) {
    if (proc.exitCode !== null) throw new Error(`portal exited ${proc.exitCode}:\n${out}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  console.log(`portal start-up compile done after ${Math.round(performance.now() - started)} ms`);

  const ca = await createCa('portal-scale bench CA');
  const rows: { round: number; form: number; answer: number; bundle: number; cpu: number; status: number; page: number; gateway: number }[] = [];
  for (let round = 1; round <= rounds; round++) {
    const client = await issueCert(ca, `bench-client-${round}`, { alg: 'ec' });
    const f0 = performance.now();
    const page = await fetch(`${base}/`);
    const html = await page.text();
    const formMs = performance.now() - f0;
    const cookie = (page.headers.get('set-cookie') ?? '').split(';')[0]!;
    const token = /name="csrf" value="([^"]+)"/.exec(html)?.[1];
    const challenge = /name="challenge" value="([^"]+)"/.exec(html)?.[1];
    if (!token || !challenge || !html.includes('bench-self-serve')) throw new Error(`form page without token, challenge or plan (status ${page.status})`);
    const signature = sign('sha256', Buffer.from(challenge), client.keyPem).toString('base64');
    const body = new URLSearchParams({
      csrf: token,
      policy: 'bench-self-serve',
      developer: 'bench@example.com',
      certificate: client.certPem,
      challenge,
      signature,
    });

    let bundleAt = Number.NaN;
    // The file the gateway watches: the bundle, or the sharded directory's manifest (renamed in last).
    const [watched, head] = values.serve ? [bundle, 'manifest.json'] : [join(work, 'out'), 'bundle.json'];
    const watcher = watch(watched, (_event, name) => {
      if (name === head && Number.isNaN(bundleAt)) bundleAt = performance.now();
    });
    if (gateway && (await statusWith(gateway.port, API, client.certPem, client.keyPem)) === 200)
      throw new Error(`round ${round}: admitted before it was added`);
    const cpu0 = cpuMs(proc.pid!);
    const sent = performance.now();
    // The gateway is asked from the moment the form is sent, concurrently with the portal's answer.
    const admitted = gateway ? firstOk(gateway.port, API, client.certPem, client.keyPem, 60_000) : Promise.resolve(Number.NaN);
    const res = await fetch(`${base}/requests`, {
      method: 'POST',
      headers: { cookie, accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' },
      body: body.toString(),
    });
    const answered = performance.now();
    const cpu = cpuMs(proc.pid!) - cpu0;
    const answer = (await res.json()) as Record<string, unknown>;
    // The bundle is renamed into place before the answer; let the watch event arrive.
    for (let i = 0; i < 50 && Number.isNaN(bundleAt); i++) await new Promise((r) => setTimeout(r, 10));
    watcher.close();
    if (res.status !== 201) throw new Error(`round ${round}: ${res.status} ${JSON.stringify(answer)}`);
    // Before anything else runs in this process, so the polling client is not held up.
    const admittedAt = await admitted;
    if (keyRow(readWireAt(bundle).wire.keys.ids, String(answer.key_id)) < 0) throw new Error(`round ${round}: ${answer.key_id} is not in the bundle`);
    // What a browser gets next (post/redirect/get): the key's status page, which reads the bundle.
    const p0 = performance.now();
    const statusPage = await fetch(`${base}/requests/${answer.key_id}?receipt=${encodeURIComponent(String(answer.receipt))}`);
    await statusPage.text();
    if (statusPage.status !== 200) throw new Error(`round ${round}: status page ${statusPage.status}`);
    const pageMs = performance.now() - p0;
    if (gateway) {
      if (Number.isNaN(admittedAt)) throw new Error(`round ${round}: the gateway did not admit the new certificate within 60 s`);
      // curl, an independent client, presenting the same certificate files.
      const files = join(work, `client-${round}`);
      writeFileSync(`${files}.pem`, client.certPem);
      writeFileSync(`${files}-key.pem`, client.keyPem);
      const byCurl = await curlStatus(gateway.port, API, `${files}.pem`, `${files}-key.pem`);
      if (byCurl !== 200) throw new Error(`round ${round}: curl got ${byCurl} from the gateway`);
    }
    rows.push({ round, form: formMs, answer: answered - sent, bundle: bundleAt - sent, cpu, status: res.status, page: pageMs, gateway: admittedAt - sent });
  }
  const r = (n: number) => (Number.isNaN(n) ? '-' : String(Math.round(n)));
  console.log('\nround  GET / ms  answer ms  bundle written ms  portal CPU ms (answer)  status page ms  gateway 200 ms');
  for (const row of rows)
    console.log(
      `${String(row.round).padStart(5)}  ${r(row.form).padStart(8)}  ${r(row.answer).padStart(9)}  ${r(row.bundle).padStart(17)}  ${r(row.cpu).padStart(22)}  ${r(row.page).padStart(14)}  ${r(row.gateway).padStart(14)}`,
    );
  const spread = (label: string, xs: number[]) => {
    const sorted = [...xs].sort((a, b) => a - b);
    console.log(`${label}: median ${r(sorted[Math.floor((sorted.length - 1) / 2)]!)} ms, worst ${r(sorted.at(-1)!)} ms (all ${sorted.length} rounds)`);
  };
  spread(
    'answer',
    rows.map((x) => x.answer),
  );
  if (gateway)
    spread(
      'gateway 200',
      rows.map((x) => x.gateway),
    );
  const warm = rows
    .slice(1)
    .map((x) => x.answer)
    .sort((a, b) => a - b);
  if (warm.length > 0) console.log(`warm answer median ${r(warm[Math.floor(warm.length / 2)]!)} ms (${warm.length} rounds); cold ${r(rows[0]!.answer)} ms`);
  const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${proc.pid}/status`, 'utf8'))?.[1];
  console.log(`portal RSS after the rounds: ${Math.round(Number(rss) / 1024)} MiB`);
  console.log(`load average: ${readFileSync('/proc/loadavg', 'utf8').trim()}`);
} finally {
  if (child && child.exitCode === null) {
    const exited = new Promise((r) => child!.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
  await gateway?.stop();
  upstream?.close();
  rmSync(work, { recursive: true, force: true });
}
