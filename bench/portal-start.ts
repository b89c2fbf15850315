// How long a signed-in portal takes from its start to its first page, with N portal key files
// in DIR/keys/portal (issue 14/15). Not part of `npm test`.
//
//   npm run build --silent && node --import tsx bench/portal-start.ts [--files 20000] [--owners 1000] [--root DIR] [--sign-in no]
//
// The config: one dynamic-mTLS API, a catalog plan, and N portal key files as the portal
// writes them, each with its own certificate (made by bench/gen-config.ts, cached in
// bench/.work/). `ROOT/dist/mtlsgate.mjs portal --oidc-issuer ...` (--root: that checkout's
// build, e.g. main's) is started on a copy with --cache DIR; the issuer is never asked
// (discovery happens at the first sign-in). Started twice: with an empty --cache, then again
// with the cache the first start left (a restart). Timed from the spawn: the "listening" log line,
// and the answer to GET / (the sign-in page, the first page anyone gets after a restart:
// sessions live in memory), and GET /style.css (a static page). Since session 13 the portal
// listens before its start-up compile (which runs in a worker thread): the bench then asks
// /style.css every 10 ms until the portal logs the compile done, and reports the slowest answer
// (the event loop held, seen from outside) and the portal's own event_loop_max_ms for the
// start. A checkout before that compiles before it listens: its compile is done at "listening".
// /keys, which needs a session, is not asked; the portal's log says when its key files are all read.
// With --sign-in no the portal is loopback-only (no OIDC, no key files read for the cap) and its
// request form needs no session: the bench also asks GET / every 10 ms until it shows the catalog
// (200 and its plans; 503 "starting" before), and reports when it first did (since session 14 the
// catalog is compiled before the keys).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { generateCompileConfig } from './gen-config.ts';
import { portalKeyFlags, writeBenchKey } from './lib/portal-keys.ts';
import { processCpuSeconds } from './lib/proc.ts';

const { files, owners, root, values } = portalKeyFlags({ 'sign-in': 'yes' });
/** Signed in (the default, as before session 14): GET / is the sign-in page. Loopback-only: GET / is the request form. */
const signedIn = values['sign-in'] !== 'no';
const cli = join(root, 'dist', 'mtlsgate.mjs');
if (!existsSync(cli)) throw new Error(`${cli} is missing: npm run build in ${root} first`);
/** Whether that build listens before its start-up compile (session 13 on). */
const listensFirst = existsSync(join(root, 'dist', 'full-compile-worker.mjs'));

/** N portal key files with their own certificates, made once from gen-config's certificates. */
async function portalConfig(n: number): Promise<string> {
  const made = resolve(import.meta.dirname, '.work', `portal-start-${n}-${owners}`);
  if (existsSync(join(made, 'done'))) return join(made, 'config');
  const certs = join(made, 'certs-src');
  await generateCompileConfig(certs, { apis: 10, keys: n }, (l) => console.log(l));
  const config = join(made, 'config');
  rmSync(config, { recursive: true, force: true });
  mkdirSync(join(config, 'keys', 'portal'), { recursive: true });
  writeFileSync(
    join(config, 'config.yaml'),
    'kind: api\nid: api-0000\nproxy:\n  listen_path: /api-0000/\n  target_url: http://127.0.0.1:9000\nauth:\n  use_certificate: true\n---\n' +
      'kind: policy\nid: bench-self-serve\naccess_rights:\n  api-0000: {}\nportal:\n  name: Bench API\n',
  );
  let i = 0;
  for (const shard of readdirSync(join(certs, 'certs')).filter((d) => /^\d+$/.test(d))) {
    for (const name of readdirSync(join(certs, 'certs', shard))) {
      writeBenchKey(config, i, `dev-${i % owners}`, readFileSync(join(certs, 'certs', shard, name), 'utf8'), 'bench-self-serve');
      i++;
    }
  }
  writeFileSync(join(made, 'done'), String(i));
  return config;
}

const source = await portalConfig(files);
const work = mkdtempSync(join(tmpdir(), 'portal-start-'));
const config = join(work, 'config');
if (spawnSync('cp', ['-r', source, config]).status !== 0) throw new Error('cp failed');
writeFileSync(join(work, 'secret'), 'bench-secret-0123456789\n');
const args = [cli, 'portal', '--config', config, '-o', join(work, 'bundle.json'), '--listen', '127.0.0.1:0', '--cache', join(work, 'cache')];
if (signedIn) args.push('--oidc-issuer', 'http://127.0.0.1:9', '--oidc-client-id', 'bench', '--oidc-client-secret-file', join(work, 'secret'));
/** One start of the portal (the cache directory persists between starts, as it would on a restart). */
async function start(label: string): Promise<void> {
  const started = performance.now();
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (c: Buffer) => (log += c.toString()));
  child.stderr.on('data', (c: Buffer) => (log += c.toString()));
  try {
    const base = await new Promise<string>((res, rej) => {
      const poll = setInterval(() => {
        const m = /"url":"(http:\/\/[^"]+?)\/?"/.exec(log);
        if (m) res(m[1]!);
        else if (child.exitCode !== null) rej(new Error(`portal exited ${child.exitCode}:\n${log}`));
        if (m || child.exitCode !== null) clearInterval(poll);
      }, 5);
    });
    const listening = performance.now() - started;
    // Loopback-only: the request form with its plans (200), or 503 "starting" until the catalog is compiled.
    let catalogAt: number | null = null;
    const askCatalog = async () => {
      const t = performance.now();
      const form = await fetch(`${base}/`);
      const text = await form.text();
      if (form.status === 200 && text.includes('name="policy"')) catalogAt = t - started;
      else if (form.status !== 503) throw new Error(`GET / answered ${form.status}, neither the form nor "starting"`);
    };
    let firstPage: number;
    if (signedIn) {
      const page = await fetch(`${base}/`);
      const body = await page.text();
      firstPage = performance.now() - started;
      if (page.status !== 401 || !body.includes('id="sign-in"')) throw new Error(`GET / answered ${page.status}, not the sign-in page`);
    } else {
      await askCatalog();
      firstPage = performance.now() - started;
    }
    const style = await fetch(`${base}/style.css`);
    await style.text();
    const staticPage = performance.now() - started;
    if (style.status !== 200) throw new Error(`GET /style.css answered ${style.status}`);
    // Until the compile is done: the slowest answer of a static page.
    const compileDone = /start-up compile is done/;
    const waits: number[] = [];
    let slowestAt = 0;
    while (listensFirst && !compileDone.test(log)) {
      if (child.exitCode !== null) throw new Error(`portal exited ${child.exitCode}:\n${log}`);
      if (!signedIn && catalogAt === null) await askCatalog();
      const t = performance.now();
      await (await fetch(`${base}/style.css`)).text();
      const took = performance.now() - t;
      if (took > Math.max(0, ...waits)) slowestAt = t - started;
      waits.push(took);
      await sleep(10);
    }
    if (!signedIn && catalogAt === null) await askCatalog();
    const compiledAt = performance.now() - started;
    // Signed in: the key files may still be being read after the compile (a restart with --cache).
    // (A build before session 15 never logs it: 30 s at most.)
    if (signedIn) for (let waited = 0; waited < 30_000 && !/every key file is read/.test(log); waited += 20) await sleep(20);
    waits.sort((a, b) => a - b);
    const asked = waits.length;
    const slowest = waits[asked - 1] ?? 0;
    const median = waits[asked >> 1] ?? 0;
    const compiled = listensFirst ? compiledAt : listening;
    const inside = /"event_loop_max_ms":(\d+)/.exec(log)?.[1];
    // Signed in: when the key index had read every file (since session 15 "My keys" and the admin
    // page answer from then on, the start-up compile running or not; before, after the compile).
    const keysRead = /"ms":(\d+),"msg":"portal: every key file is read"/.exec(log)?.[1];
    const cpu = processCpuSeconds(child.pid!);
    console.log(
      `${root} (${label}${signedIn ? '' : ', loopback-only'}): ${files} portal key files: listening after ${Math.round(listening)} ms, first page (GET /, ${signedIn ? 'sign-in' : 'the form or "starting"'}) after ${Math.round(firstPage)} ms, ` +
        (signedIn ? '' : `catalog page (GET /, the form with its plans) after ${catalogAt === null ? 'never' : Math.round(catalogAt)} ms, `) +
        `static page (GET /style.css) after ${Math.round(staticPage)} ms; start-up compile done after ${Math.round(compiled)} ms` +
        (listensFirst
          ? ` (meanwhile ${asked} static pages: median ${Math.round(median)} ms, the slowest ${Math.round(slowest)} ms at ${Math.round(slowestAt)} ms; the portal's event loop held at most ${inside ?? '?'} ms)`
          : ' (before listening)') +
        (signedIn ? `; every key file read ${keysRead === undefined ? '(not logged by this build)' : `${keysRead} ms after the portal was made`}` : '') +
        `; portal CPU so far ${Math.round(cpu * 1000)} ms; load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`,
    );
  } finally {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
}

try {
  await start('first start, empty --cache');
  await start('restart, --cache kept');
} finally {
  rmSync(work, { recursive: true, force: true });
}
