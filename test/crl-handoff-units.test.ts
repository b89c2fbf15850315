// runtime/cluster/crl-files.ts and crl-report.ts (docs/security.md section 58): a large CRL
// crosses between the processes of `serve --workers N` as a file in the primary's private
// directory, named, sized and digested in a message of a few hundred bytes; the primary's CRL
// thread reads it only as that file and believes it only with that size and digest, then the
// CA's signature (section 49's promise). The cluster test is test/workers-crl-handoff.test.ts.
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, lstatSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { parseCrl } from '../bundle/crl.ts';
import { fingerprintOf } from '../cert/fingerprint.ts';
import { handoffDirPrefix, makeHandoffDir, removeHandoffDir, sweepStaleHandoffDirs } from '../runtime/cluster/crl-files.ts';
import { ANSWER_BOUND, boundOf, MAX_TAKEN_PER_SECOND, MESSAGE_BOUND, measure, PER_SECOND, WorkerMessageBudget } from '../runtime/cluster/ipc-budget.ts';
import { reportCrl } from '../runtime/cluster/crl-report.ts';
import { checkToPrimary } from '../runtime/cluster/ipc-check.ts';
import type { TakenMessage } from '../runtime/cluster/lease-protocol.ts';
import { TakenSoFar } from '../runtime/cluster/taken-so-far.ts';
import { verifyTaken } from '../runtime/cluster/verify-taken.ts';
import { CrlThread } from '../runtime/crl-worker-client.ts';
import { bigCrl } from './helpers/big-crl.ts';
import { createOpensslCa } from './helpers/openssl-pki.ts';

const ca = createOpensslCa('Handoff Units CA');
const caCert = new X509Certificate(ca.caPem);
// 60,000 entries: ~2.3 MB, above the 1 MiB from which a list crosses as a file.
const der = bigCrl(ca.caCert, join(ca.dir, 'ca-key.pem'), 60_000);
const header = parseCrl(der);
const floor = { ca: fingerprintOf(caCert.raw), thisUpdate: header.thisUpdate.getTime(), number: header.number };
const at = header.thisUpdate.getTime() + 60_000;
const dir = makeHandoffDir();
const elsewhere = mkdtempSync(join(tmpdir(), 'mtlsgate-elsewhere-'));
const thread = new CrlThread(60_000);
after(async () => {
  await thread.stop();
  removeHandoffDir(dir);
  rmSync(elsewhere, { recursive: true, force: true });
  ca.cleanup();
});

/** What a worker sends after taking `bytes` (through the real reporter and the worker's CRL thread). */
async function reported(bytes: Buffer): Promise<{ message: TakenMessage; wire: number }> {
  const sent: TakenMessage[] = [];
  await reportCrl({ url: 'http://crl.example/big.crl', floor, bytes: Buffer.from(bytes), issuer: caCert.raw }, dir, (m) => sent.push(m), thread);
  assert.equal(sent.length, 1);
  return { message: sent[0], wire: JSON.stringify(sent[0]).length };
}

/** The primary's verdict on `message`: its form (ipc-check.ts), then its evidence (verify-taken.ts) in the CRL thread. */
async function verdict(message: TakenMessage): Promise<string> {
  const checked = checkToPrimary(message, at);
  if (typeof checked === 'string') return checked;
  const verified = await verifyTaken(checked as TakenMessage, undefined, at, thread, dir);
  return typeof verified === 'string' ? verified : 'verified';
}

test('a CRL of 1 MiB and more is reported in a message of a few hundred bytes; the primary reads the file it names, checks size, digest and signature', async () => {
  const { message, wire } = await reported(der);
  // Before: the message carried the list as base64 (3.1 MB of JSON here, 52 MB for 1,000,000 entries).
  assert.ok(wire < 1_024, `the message is ${wire} bytes`);
  assert.equal(message.crl?.der, undefined);
  const file = message.crl!.file!;
  assert.match(file.name, /^[0-9a-f]{32}\.crl$/);
  assert.equal(file.bytes, der.length);
  assert.deepEqual(readFileSync(join(dir, file.name)), der);
  assert.equal(statSync(join(dir, file.name)).mode & 0o777, 0o600, 'the file is mode 0600');
  assert.equal(statSync(dir).mode & 0o777, 0o700, 'the directory is mode 0700');
  assert.equal(await verdict(message), 'verified');
  assert.equal(thread.started, 1, 'written and read in the CRL thread (one, reused)');
  // A list under 1 MiB still travels in the message, as before.
  const small = await reported(bigCrl(ca.caCert, join(ca.dir, 'ca-key.pem'), 10));
  assert.equal(small.message.crl?.file, undefined);
  assert.equal(typeof small.message.crl?.der, 'string');
});

test('a worker naming a file outside the directory, a symbolic link, a FIFO, a file larger than stated or of another digest: refused with why', async () => {
  const { message } = await reported(der);
  const file = message.crl!.file!;
  const named = (over: Partial<typeof file>): TakenMessage => ({ ...message, crl: { ...message.crl!, file: { ...file, ...over } } });
  // Outside the directory: the name is no hand-off name, refused by its form before anything is opened.
  writeFileSync(join(elsewhere, 'x.crl'), der);
  assert.match(await verdict(named({ name: `../${elsewhere.split('/').pop()}/x.crl` })), /crl\.file\.name is not 32 hex digits and \.crl/);
  assert.match(await verdict(named({ name: join(elsewhere, 'x.crl') })), /crl\.file\.name is not/);
  // A symbolic link in the directory, to a valid copy of the list elsewhere (digest and size right): not followed.
  const link = `${'a'.repeat(32)}.crl`;
  symlinkSync(join(elsewhere, 'x.crl'), join(dir, link));
  assert.match(await verdict(named({ name: link })), /symbolic link: not followed/);
  // A FIFO: not waited on (no writer would ever come), refused as no regular file.
  const fifo = `${'b'.repeat(32)}.crl`;
  execFileSync('mkfifo', [join(dir, fifo)]);
  assert.match(await verdict(named({ name: fifo })), /not a regular file/);
  // Larger than stated: the list with bytes appended.
  const longer = `${'c'.repeat(32)}.crl`;
  writeFileSync(join(dir, longer), Buffer.concat([der, Buffer.alloc(4096)]));
  assert.match(await verdict(named({ name: longer })), new RegExp(`holds ${der.length + 4096} bytes, the message says ${der.length}`));
  // The digest of another list: the CA's own bytes, one changed.
  const changed = `${'d'.repeat(32)}.crl`;
  const forged = Buffer.from(der);
  forged[forged.length - 100] ^= 1;
  writeFileSync(join(dir, changed), forged);
  assert.match(await verdict(named({ name: changed })), /does not have the SHA-256 the message says/);
  // The digest stated for the changed bytes: the digest passes, the CA's signature does not.
  assert.match(
    await verdict(named({ name: changed, sha256: createHash('sha256').update(forged).digest('hex') })),
    /does not verify against the CA certificate/,
  );
  // A file that is not there, a size past the ceiling.
  assert.match(await verdict(named({ name: `${'e'.repeat(32)}.crl` })), /cannot be opened \(ENOENT\)/);
  assert.match(await verdict(named({ bytes: 64 * 1024 * 1024 + 1 })), /crl\.file\.bytes is not a size up to the CRL ceiling/);
  // Base64 of a list of 1 MiB or more in the message itself is refused by its form (it is parsed on the primary's loop).
  assert.match(
    await verdict({ ...message, crl: { ...message.crl!, file: undefined, der: der.toString('base64') } }),
    /crl\.der is not base64 of a CRL under 1 MiB/,
  );
  // The real one still verifies; the directory holds nothing the primary did not expect to read.
  assert.equal(await verdict(message), 'verified');
  assert.ok(readdirSync(dir).length >= 1);
});

test('the primary keeps the file of the newest list per URL and CA: a report no newer is not kept (its file may go), a newer one displaces it', () => {
  const taken = new TakenSoFar();
  const file = (c: string) => ({ name: `${c.repeat(32)}.crl`, bytes: der.length, sha256: 'ab'.repeat(32) });
  const crl = (c: string, thisUpdate: number) => ({ url: 'http://crl.example/big.crl', floor: { ...floor, thisUpdate }, file: file(c) });
  assert.deepEqual(taken.add({ crl: crl('a', floor.thisUpdate) }), { kept: true, displaced: undefined });
  // The same list reported again (by the other worker, or the same message replayed): not kept, and the kept file is not its to remove.
  assert.deepEqual(taken.add({ crl: crl('b', floor.thisUpdate) }), { kept: false });
  assert.equal(taken.holdsFile(file('a').name), true);
  assert.equal(taken.holdsFile(file('b').name), false);
  const newer = taken.add({ crl: crl('c', floor.thisUpdate + 1_000) });
  assert.equal(newer.kept, true);
  assert.equal(newer.displaced?.file?.name, file('a').name);
  assert.equal(taken.holdsFile(file('a').name), false);
  // Counted against the bytes the primary keeps as the file's size (section 49's bound).
  assert.equal(new TakenSoFar(64, der.length - 1).crlRefusal(crl('d', floor.thisUpdate))?.includes('more than'), true);
  assert.deepEqual(
    taken.messages().map((m) => m.crl?.file?.name),
    [file('c').name],
  );
});

test('at start the primary removes the hand-off directories of dead primaries of this host and this user, never following a link', () => {
  const parent = mkdtempSync(join(elsewhere, 'tmp-'));
  const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
  const stale = mkdtempSync(join(parent, handoffDirPrefix(dead)));
  writeFileSync(join(stale, `${'d'.repeat(32)}.crl`), 'old list');
  // A link inside the stale directory: removed as a link, what it points to stays.
  const target = mkdtempSync(join(parent, 'target-'));
  writeFileSync(join(target, 'keep'), 'x');
  symlinkSync(target, join(stale, 'link'));
  const live = mkdtempSync(join(parent, handoffDirPrefix(process.ppid)));
  const linkNamed = join(parent, `${handoffDirPrefix(dead)}Lnk123`);
  symlinkSync(target, linkNamed);
  const fileNamed = join(parent, `${handoffDirPrefix(dead)}File12`);
  writeFileSync(fileNamed, 'x');
  const otherHost = mkdtempSync(join(parent, `mtlsgate-crl-00000000-${dead}-`));
  // Another user's (made here only as root, who can give it away).
  const otherUser = mkdtempSync(join(parent, handoffDirPrefix(dead)));
  if (process.getuid?.() === 0) chownSync(otherUser, 4242, 4242);
  const mine = makeHandoffDir(parent);

  const removed = sweepStaleHandoffDirs(parent);
  assert.ok(removed.includes(stale.slice(parent.length + 1)));
  assert.ok(!existsSync(stale));
  assert.deepEqual(readdirSync(target), ['keep'], 'a link inside is not followed');
  for (const kept of [live, linkNamed, fileNamed, otherHost, ...(process.getuid?.() === 0 ? [otherUser] : []), mine])
    assert.ok(lstatSync(kept, { throwIfNoEntry: false }), kept);
  assert.equal(lstatSync(linkNamed).isSymbolicLink(), true);
});

test('the size of a worker message is walked up to its bound and no further, however deep it nests; a second holds a budget', () => {
  assert.deepEqual(measure({ type: 'mtlsgate:acquire', closes: [1, 2] }, MESSAGE_BOUND), { bytes: 2 + 8 + 18 + 10 + 4 + 16, values: 5 });
  assert.equal(measure({ type: 'mtlsgate:taken', pad: 'x'.repeat(MESSAGE_BOUND.bytes) }, MESSAGE_BOUND), null);
  // 40,000 values in 0.2 MB: the parse's cost is in its values.
  assert.equal(measure({ type: 'mtlsgate:return', closes: new Array(40_000).fill(0) }, MESSAGE_BOUND), null);
  assert.equal(measure({ type: 'mtlsgate:x', o: Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`k${i}`, i])) }, MESSAGE_BOUND), null);
  // An answer the primary asked for may be larger.
  assert.equal(boundOf('mtlsgate:answer', true), ANSWER_BOUND);
  assert.equal(boundOf('mtlsgate:answer', false), MESSAGE_BOUND);
  assert.ok(measure({ type: 'mtlsgate:answer', metrics: new Array(40_000).fill({ value: 1 }) }, ANSWER_BOUND));
  // 1,000,000 levels: JSON.parse takes it (V8's parser does not recurse); the walk does not recurse either.
  const deep = JSON.parse(`${'['.repeat(1_000_000)}${']'.repeat(1_000_000)}`);
  assert.equal(measure({ type: 'mtlsgate:x', deep }, MESSAGE_BOUND), null);
  assert.equal(measure({ type: 'mtlsgate:x', deep }, ANSWER_BOUND)?.values, 1_000_002);

  const budget = new WorkerMessageBudget();
  try {
    const small = { bytes: 150, values: 15 };
    let over: string | null = null;
    let n = 0;
    while (over === null && n < 1_000_000) (over = budget.spend(1, small)), n++;
    assert.deepEqual([n, over], [PER_SECOND.values / 15 + 1, `more than ${PER_SECOND.values} values in a second`]);
    assert.equal(budget.spend(2, small), null, "another worker's budget is its own");
    for (let i = 0; i < MAX_TAKEN_PER_SECOND; i++) assert.equal(budget.admitTaken(2), true);
    assert.equal(budget.admitTaken(2), false);
  } finally {
    budget.stop();
  }
});
