// `serve --workers 2`: a large CRL crosses between the processes as a file in the primary's
// private directory, not through node:cluster's JSON channel (docs/security.md section 58).
// Before, a worker sent the list it took to the primary as base64 in the message (52 MB of JSON
// for 1,000,000 entries), which the primary parsed, checked and sent on to the other worker on
// its event loop, the one that grants every worker's rate-limit leases. A module loaded into
// every process (NODE_OPTIONS=--import) records the size of every mtlsgate message sent on the
// channel, both ways, and in the second test plays a worker taken over through its request path
// (section 42's liar): on SIGUSR2 it sends the primary the messages the test wrote to a file.
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseCrl } from '../bundle/crl.ts';
import { fingerprintOf } from '../cert/fingerprint.ts';
import { handoffDirPrefix } from '../runtime/cluster/crl-files.ts';
import { bigCrl } from './helpers/big-crl.ts';
import { crlBundle, crlWorkersSetup, issueInto, serveBodies } from './helpers/crl-workers.ts';
import { demoServeArgs, listenPort } from './helpers/demo-gateway.ts';
import { waitFor } from './helpers/ops-fixtures.ts';
import { curl, spawnServe } from './helpers/serve-fixtures.ts';

const setup = crlWorkersSetup('crl-handoff', 'Handoff CA');
const { tmp, servers, gateways } = setup;
/** Entries of the newer list: ~2.3 MB, above the 1 MiB from which a list crosses as a file. */
const ENTRIES = 60_000;

/** serve --workers 2 under its own TMPDIR, every mtlsgate message's size recorded, worker 1 ready to send the messages of `forged` on SIGUSR2. */
function serveRecorded(name: string, bundle: string) {
  const dir = join(tmp.dir, name);
  const tmpdir = join(dir, 'tmp');
  mkdirSync(tmpdir, { recursive: true });
  const sizes = join(dir, 'sizes.log');
  const forged = join(dir, 'forged.json');
  const inject = join(dir, 'inject.mjs');
  writeFileSync(
    inject,
    `import cluster from 'node:cluster';
import { appendFileSync, readFileSync } from 'node:fs';
const record = (who, m) => { if (typeof m?.type === 'string' && m.type.startsWith('mtlsgate:')) appendFileSync(${JSON.stringify(sizes)}, who + ' ' + m.type + ' ' + JSON.stringify(m).length + '\\n'); };
if (cluster.isWorker) {
  const send = process.send.bind(process);
  process.send = (m, ...rest) => { record('worker', m); return send(m, ...rest); };
  process.on('SIGUSR2', () => { for (const m of JSON.parse(readFileSync(${JSON.stringify(forged)}, 'utf8'))) process.send(m); });
} else cluster.on('fork', (w) => { const send = w.send.bind(w); w.send = (m, ...rest) => { record('primary', m); return send(m, ...rest); }; });
`,
  );
  const gw = spawnServe(demoServeArgs(bundle, setup.pki, { admin: 'loopback', extra: ['--workers', '2', '--crl-refresh', '1s', '--crl-stale', 'closed'] }), {
    ...process.env,
    TMPDIR: tmpdir,
    NODE_OPTIONS: `--import=${inject}`,
  });
  gateways.push(gw);
  return {
    gw,
    tmpdir,
    /** The largest mtlsgate message of these types sent on the channel, either way. */
    largest: (types: string[]) =>
      existsSync(sizes)
        ? Math.max(
            0,
            ...readFileSync(sizes, 'utf8')
              .trim()
              .split('\n')
              .map((l) => l.split(' '))
              .filter(([, type]) => types.includes(type))
              .map(([, , size]) => Number(size)),
          )
        : 0,
    /** The primary's hand-off directory. */
    handoffDir: () => {
      const found = readdirSync(tmpdir).filter((n) => n.startsWith('mtlsgate-crl-'));
      assert.equal(found.length, 1, `one hand-off directory in ${tmpdir}: ${found.join(', ')}`);
      return join(tmpdir, found[0]);
    },
    /** Worker `worker` (1 or 2) sends `messages`. */
    lie: async (messages: unknown[], worker = 1) => {
      writeFileSync(forged, JSON.stringify(messages));
      process.kill(((await gw.serving()).pids as number[])[worker - 1], 'SIGUSR2');
    },
  };
}

/** An older list revoking `stolen` (10 entries), then a newer one of ENTRIES revoking `lost` too, both CA-signed DER. */
async function twoLists(): Promise<{ base: Buffer; full: Buffer }> {
  const leaf = issueInto(setup.ca, setup.pki, ['stolen', 'lost']);
  const serial = (name: 'stolen' | 'lost') => new X509Certificate(readFileSync(leaf[name].cert)).serialNumber;
  const key = join(setup.ca.dir, 'ca-key.pem');
  const base = bigCrl(setup.ca.caCert, key, 10, [serial('stolen')]);
  // thisUpdate is in whole seconds: the newer list one second later.
  await new Promise((r) => setTimeout(r, 1_100));
  return { base, full: bigCrl(setup.ca.caCert, key, ENTRIES, [serial('stolen'), serial('lost')]) };
}

async function answers(gw: ReturnType<typeof spawnServe>, who: string, count: number): Promise<string[]> {
  const port = listenPort(await gw.serving());
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const r = await curl(`https://127.0.0.1:${port}/ca/x`, setup.pki, who);
    out.push(r.status === 200 ? 'admitted' : (JSON.parse(r.body) as { code: string }).code);
  }
  return out;
}

const TYPES = ['mtlsgate:taken', 'mtlsgate:floor', 'mtlsgate:start'];
let lists: { base: Buffer; full: Buffer };
let url: string;
let newerOnce = false;

test('a CRL of 1 MiB one worker fetched reaches the other as a file: no message on the IPC channel carries it, the revocation holds on every connection, the directory goes at the stop', async () => {
  lists = await twoLists();
  // The newer list goes to one fetch only; every other fetch gets the older one.
  let newerServed = false;
  url = `${await serveBodies(servers, () => {
    if (!newerOnce || newerServed) return { body: lists.base };
    newerServed = true;
    return { body: lists.full };
  })}/internal.crl`;
  mkdirSync(join(tmp.dir, 'cfg'));
  const bundle = await crlBundle(join(tmp.dir, 'cfg'), setup.ca, setup.echo.url, url);
  const { gw, largest, handoffDir } = serveRecorded('first', bundle);
  await waitFor('both workers hold the older list', async () => (await answers(gw, 'stolen', 2)).every((a) => a === 'mtls.cert_revoked'));
  assert.deepEqual(await answers(gw, 'lost', 2), ['admitted', 'admitted']);

  newerOnce = true;
  await waitFor('the newer list fetched by one worker', () => newerServed);
  await waitFor('the other worker took its copy', () =>
    gw.lines().some((l) => l.msg === 'CRL updated (the copy another worker fetched)' && l.entries === ENTRIES + 2),
  );
  // Both workers fetch every second: the other one gets the older list again, and refuses it.
  await new Promise((r) => setTimeout(r, 2_000));
  assert.deepEqual(await answers(gw, 'lost', 6), Array(6).fill('mtls.cert_revoked'));
  // Before: the worker's report and the primary's message to the other worker each carried the
  // list as base64 (3.1 MB of JSON).
  const biggest = largest(TYPES);
  assert.ok(biggest > 0, 'the messages were recorded');
  assert.ok(biggest < 4_096, `the largest CRL message on the channel: ${biggest} bytes`);
  const dir = handoffDir();
  assert.equal(statSync(dir).mode & 0o777, 0o700, 'the hand-off directory is mode 0700');
  assert.deepEqual(
    readdirSync(dir).map((n) => statSync(join(dir, n)).size),
    [lists.full.length],
    'the primary keeps the one list as its file',
  );
  gw.child.kill('SIGTERM');
  await gw.exited;
  assert.ok(!existsSync(dir), 'the hand-off directory is removed at the stop');
});

test('a worker naming a file outside the directory, a symbolic link, a file larger than stated or of another digest: refused, logged, the last good list kept', async () => {
  const bundle = join(tmp.dir, 'cfg', 'crl-bundle.json');
  // The URL keeps answering the older list: the newer one comes from a worker, or not at all.
  newerOnce = false;
  // A hand-off directory a primary killed with SIGKILL left, the CRL still in it: removed at this start.
  const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
  mkdirSync(join(tmp.dir, 'liar', 'tmp'), { recursive: true });
  const left = mkdtempSync(join(tmp.dir, 'liar', 'tmp', handoffDirPrefix(dead)));
  writeFileSync(join(left, `${'e'.repeat(32)}.crl`), lists.full);
  const { gw, handoffDir, lie } = serveRecorded('liar', bundle);
  await waitFor('both workers hold the older list', async () => (await answers(gw, 'stolen', 2)).every((a) => a === 'mtls.cert_revoked'));
  const dir = handoffDir();
  assert.ok(!existsSync(left), "the dead primary's directory is gone");
  assert.deepEqual(gw.lines().find((l) => l.msg === 'hand-off directories of primaries no longer running removed')?.removed, [
    left.slice(left.lastIndexOf('/') + 1),
  ]);
  const real = parseCrl(lists.full);
  const caCert = new X509Certificate(setup.ca.caPem);
  const floor = { ca: fingerprintOf(caCert.raw), thisUpdate: real.thisUpdate.getTime(), number: real.number };
  const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  const message = (name: string, bytes: number, digest: string) => ({
    type: 'mtlsgate:taken',
    crl: { url, floor, file: { name, bytes, sha256: digest }, issuer: caCert.raw.toString('base64') },
  });
  // A valid copy of the newer list outside the directory, and a symbolic link to it inside.
  const outside = join(tmp.dir, 'outside.crl');
  writeFileSync(outside, lists.full);
  const link = `${'a'.repeat(32)}.crl`;
  symlinkSync(outside, join(dir, link));
  const longer = `${'b'.repeat(32)}.crl`;
  writeFileSync(join(dir, longer), Buffer.concat([lists.full, Buffer.alloc(100)]));
  const changed = `${'c'.repeat(32)}.crl`;
  const forged = Buffer.from(lists.full);
  forged[forged.length - 200] ^= 1;
  writeFileSync(join(dir, changed), forged);
  // Two from each worker: the primary logs a worker's 1st, 2nd, 4th, 8th, ... refusal.
  const dropped = () => gw.lines().filter((l) => typeof l.msg === 'string' && l.msg.startsWith('message from a worker dropped'));
  await lie([message('../outside.crl', lists.full.length, sha256(lists.full)), message(link, lists.full.length, sha256(lists.full))], 1);
  await waitFor("worker 1's two dropped and logged", () => dropped().length >= 2);
  await lie([message(longer, lists.full.length, sha256(lists.full)), message(changed, lists.full.length, sha256(lists.full))], 2);
  await waitFor('all four dropped and logged', () => dropped().length >= 4);
  const admin = `http://${(await gw.serving()).admin}`;
  assert.match(await (await fetch(`${admin}/metrics`)).text(), /mtlsgate_worker_messages_refused_total 4\b/);
  const errors = dropped().map((l) => String(l.error));
  assert.ok(
    errors.some((e) => /crl\.file\.name is not 32 hex digits/.test(e)),
    errors.join('\n'),
  );
  assert.ok(
    errors.some((e) => /symbolic link: not followed/.test(e)),
    errors.join('\n'),
  );
  assert.ok(
    errors.some((e) => new RegExp(`holds ${lists.full.length + 100} bytes, the message says ${lists.full.length}`).test(e)),
    errors.join('\n'),
  );
  assert.ok(
    errors.some((e) => /does not have the SHA-256 the message says/.test(e)),
    errors.join('\n'),
  );
  // The last good list stays in every worker: stolen revoked, lost (revoked only by the newer list) not; no worker took a copy.
  assert.deepEqual(await answers(gw, 'stolen', 4), Array(4).fill('mtls.cert_revoked'));
  assert.deepEqual(await answers(gw, 'lost', 4), Array(4).fill('admitted'));
  // (A copy of the older list may be taken at the start, one worker's fetch answering first.)
  assert.ok(!gw.lines().some((l) => l.msg === 'CRL updated (the copy another worker fetched)' && l.entries === ENTRIES + 2));
  // The refused files are removed (the link itself, not what it points to).
  assert.deepEqual(readdirSync(dir), []);
  assert.ok(existsSync(outside), 'the target of the link is untouched');

  // A message over the size (its JSON parsed already: node:cluster parses before any of our
  // code), then a flood: each sender is killed and replaced, named in the log; the other serves
  // on meanwhile. (One at a time: with both gone at once node:cluster closes the listener, and
  // this test's port 0 would come back as another port.)
  const restarted = () => gw.lines().filter((l) => l.msg === 'worker restarted: it sent what no mtlsgate worker sends');
  const pids = (await gw.serving()).pids as number[];
  const replaced = (gone: number[]) =>
    waitFor(`worker ${gone.join(', ')} replaced and serving`, async () => {
      const h = (await (await fetch(`${admin}/health`)).json()) as { status: string; workers: { pid: number }[] };
      return h.status === 'ok' && h.workers.length === 2 && h.workers.every((w) => !gone.includes(w.pid));
    });
  await lie([{ type: 'mtlsgate:answer', id: 1, health: { pad: 'x'.repeat(17 * 1024 * 1024) } }], 1);
  await waitFor('the worker that sent 17 MiB restarted', () => restarted().length === 1);
  assert.deepEqual([restarted()[0].pid, restarted()[0].error], [pids[0], 'a message of type "mtlsgate:answer" over 2097152 bytes or 10000 values']);
  assert.deepEqual(await answers(gw, 'stolen', 2), Array(2).fill('mtls.cert_revoked'), 'the other worker serves meanwhile');
  await replaced([pids[0]]);
  // Each message under the bound (9,000 values), 200 of them at once.
  await lie(
    Array.from({ length: 200 }, (_, i) => ({ type: 'flood', i, pad: new Array(9_000).fill(0) })),
    2,
  );
  await waitFor('the flooding worker restarted', () => restarted().length === 2);
  assert.deepEqual([restarted()[1].pid, restarted()[1].error], [pids[1], 'more than 600000 values in a second']);
  await replaced(pids);
  assert.deepEqual(await answers(gw, 'stolen', 4), Array(4).fill('mtls.cert_revoked'));
});
