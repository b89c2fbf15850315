// docs/security.md section 36: files are replaced through one writer (common/atomic-write.ts),
// and serve --state-dir refuses a directory others can write.
// Before: state.json was written through `state.json.<pid>.tmp` opened with 'w', which followed a
// symlink planted under that name: the next bundle taken overwrote the file it pointed at, and the
// rename made state.json that symlink. The compile cache wrote `NAME.<pid>.tmp` the same way. A
// state directory that existed was used whatever its owner and mode.
import assert from 'node:assert/strict';
import { chmodSync, chownSync, copyFileSync, lstatSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadBundle } from '../bundle/read.ts';
import { writeFileAtomic } from '../common/atomic-write.ts';
import { readDigestedJson, writeDigestedJson } from '../compiler/digested-json.ts';
import type { HealthReport } from '../runtime/admin.ts';
import { demoServeArgs, spawnDemoGateway } from './helpers/demo-gateway.ts';
import { startEcho, type EchoUpstream } from './helpers/gateway-fixtures.ts';
import { tempDir, waitFor } from './helpers/ops-fixtures.ts';
import { CLI, compileWithCli, demoPki, run, spawnServe, writeConfig } from './helpers/serve-fixtures.ts';

const tmp = tempDir('atomic-writes');
let pki: Awaited<ReturnType<typeof demoPki>>;
let echo: EchoUpstream;
const started: ReturnType<typeof spawnServe>[] = [];
before(async () => {
  pki = await demoPki(tmp.dir);
  echo = await startEcho();
});
after(async () => {
  for (const gw of started) gw.kill();
  await echo?.close();
  tmp.cleanup();
});

/** A serve that must not start: its exit status and stderr (killed after 20 s: one that starts is a failure, not a hang). */
async function refusedAtStart(args: string[]): Promise<{ code: number | null; stderr: string }> {
  const gw = spawnServe(args);
  started.push(gw);
  const timer = setTimeout(() => gw.kill(), 20_000);
  const { code } = await gw.exited;
  clearTimeout(timer);
  return { code, stderr: gw.output().stderr };
}

describe('serve --state-dir', () => {
  const key = join(tmp.dir, 'ops');
  const first = join(tmp.dir, 'first.json');
  const second = join(tmp.dir, 'second.json');
  const withKey = (extra: string[]) => ({ admin: 'loopback' as const, extra: ['--bundle-public-key', `${key}.pub`, ...extra] });

  before(async () => {
    assert.equal((await run(process.execPath, [CLI, 'keygen', key])).code, 0);
    const sign = ['--sign', `${key}.key`];
    await compileWithCli(writeConfig(join(tmp.dir, 'c1'), pki.dir, echo.url, ['partner-a', 'bob']), first, sign);
    await compileWithCli(writeConfig(join(tmp.dir, 'c2'), pki.dir, echo.url, ['partner-a']), second, sign);
  });

  test('a symlink planted under the old temporary name: a newer bundle taken leaves its target alone, state.json stays a regular file', async () => {
    const state = join(tmp.dir, 'state');
    const served = join(tmp.dir, 'served.json');
    const victim = join(tmp.dir, 'victim.txt');
    writeFileSync(victim, 'precious\n');
    copyFileSync(first, served);
    const gw = spawnDemoGateway(served, pki, withKey(['--state-dir', state]));
    started.push(gw);
    const admin = `http://${(await gw.serving()).admin}`;
    const health = async () => (await (await fetch(`${admin}/health`)).json()) as HealthReport;
    assert.equal((await health()).bundle.digest, loadBundle(readFileSync(first)).digest);

    // What the audit did: `ln -s /tmp/victim st/state.json.$PID.tmp`, then a newer bundle.
    const planted = join(state, `state.json.${gw.child.pid}.tmp`);
    symlinkSync(victim, planted);
    const secondDigest = loadBundle(readFileSync(second)).digest;
    writeFileAtomic(served, readFileSync(second));
    await waitFor('the second bundle served', async () => (await health()).bundle.digest === secondDigest, 15_000);
    const file = join(state, 'state.json');
    await waitFor('state.json records the second bundle', () => {
      try {
        return JSON.parse(readFileSync(file, 'utf8')).bundle.digest === secondDigest;
      } catch {
        return false;
      }
    });

    assert.equal(readFileSync(victim, 'utf8'), 'precious\n', 'the symlink target is unchanged');
    assert.ok(lstatSync(file).isFile(), 'state.json is a regular file, not the planted symlink');
    assert.equal(lstatSync(file).mode & 0o777, 0o600);
    assert.ok(lstatSync(planted).isSymbolicLink(), 'the planted link is left as it was (not ours to remove)');
    assert.deepEqual(readdirSync(state).sort(), ['state.json', `state.json.${gw.child.pid}.tmp`], 'no temporary file left');
    gw.child.kill('SIGTERM');
    assert.equal((await gw.exited).code, 0);
  });

  test('a state directory others can write, or another user owns, is refused at start (exit 2) with what to do', async () => {
    const open = join(tmp.dir, 'open-state');
    mkdirSync(open);
    chmodSync(open, 0o777);
    let r = await refusedAtStart(demoServeArgs(second, pki, withKey(['--state-dir', open])));
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      /--state-dir .*open-state: is writable by its group and other users \(mode 0777\): whoever can write it can remove or replace the state file/,
    );
    assert.match(r.stderr, /chmod 700 .*open-state/);
    assert.deepEqual(readdirSync(open), [], 'nothing written into it');

    chmodSync(open, 0o770);
    r = await refusedAtStart(demoServeArgs(second, pki, withKey(['--state-dir', open])));
    assert.equal(r.code, 2);
    assert.match(r.stderr, /is writable by its group \(mode 0770\)/);

    if (process.getuid?.() === 0) {
      // Only root can give a directory away; elsewhere the ownership rule is the same line of code.
      chmodSync(open, 0o700);
      chownSync(open, 65534, 65534);
      r = await refusedAtStart(demoServeArgs(second, pki, withKey(['--state-dir', open])));
      assert.equal(r.code, 2);
      assert.match(r.stderr, /--state-dir .*open-state: is owned by uid 65534, not by this user \(uid 0\)/);
    }
  });

  // Section 39. Before: only the state directory itself was checked, so one under a directory
  // every user can write started, and whoever could write that parent could rename it away and
  // put another directory, with an older state file, in its place.
  test('a state directory under a parent others can write is refused at start (exit 2), as OpenSSH StrictModes does, also through a symlink; a sticky parent is fine', async () => {
    const shared = join(tmp.dir, 'shared');
    mkdirSync(shared);
    chmodSync(shared, 0o777);
    const state = join(shared, 'state');
    let r = await refusedAtStart(demoServeArgs(second, pki, withKey(['--state-dir', state])));
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      /--state-dir .*shared\/state: its parent .*shared is writable by its group and other users \(mode 0777\) and not sticky: whoever can write it can rename .*shared\/state away and put another directory, with another state file, in its place/,
    );
    assert.match(r.stderr, /chmod go-w .*shared; a sticky directory such as \/tmp is fine/);

    // Named through a symlink that lives in a safe directory: where it resolves counts.
    const link = join(tmp.dir, 'state-link');
    symlinkSync(state, link);
    r = await refusedAtStart(demoServeArgs(second, pki, withKey(['--state-dir', link])));
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--state-dir .*state-link: its parent .*shared is writable by its group and other users/);

    chmodSync(shared, 0o770);
    r = await refusedAtStart(demoServeArgs(second, pki, withKey(['--state-dir', state])));
    assert.equal(r.code, 2);
    assert.match(r.stderr, /its parent .*shared is writable by its group \(mode 0770\) and not sticky/);

    if (process.getuid?.() === 0) {
      chmodSync(shared, 0o755);
      chownSync(shared, 65534, 65534);
      r = await refusedAtStart(demoServeArgs(second, pki, withKey(['--state-dir', state])));
      assert.equal(r.code, 2);
      assert.match(r.stderr, /its parent .*shared is owned by uid 65534, neither root nor this user \(uid 0\)/);
      chownSync(shared, 0, 0);
    }

    // Sticky, as /tmp is: nobody can rename what another user owns in it.
    chmodSync(shared, 0o1777);
    const gw = spawnDemoGateway(second, pki, withKey(['--state-dir', state]));
    started.push(gw);
    await gw.serving();
    gw.child.kill('SIGTERM');
    assert.equal((await gw.exited).code, 0);
  });
});

test('the compile cache: a symlink planted under the old temporary name of an entry is not written through', () => {
  const dir = join(tmp.dir, 'cache');
  mkdirSync(dir);
  const victim = join(tmp.dir, 'cache-victim.txt');
  writeFileSync(victim, 'precious\n');
  const entry = join(dir, 'entry.json');
  symlinkSync(victim, `${entry}.${process.pid}.tmp`);
  writeDigestedJson(entry, { keys: 1 });
  assert.equal(readFileSync(victim, 'utf8'), 'precious\n');
  assert.ok(lstatSync(entry).isFile());
  assert.deepEqual(readDigestedJson(entry), { keys: 1 });
});

test('writeFileAtomic: the mode asked, the old file replaced whole, no temporary file left', () => {
  const dir = join(tmp.dir, 'plain');
  mkdirSync(dir);
  const path = join(dir, 'f');
  writeFileSync(path, 'old');
  writeFileAtomic(path, 'new', { mode: 0o600 });
  assert.equal(readFileSync(path, 'utf8'), 'new');
  assert.equal(lstatSync(path).mode & 0o777, 0o600);
  writeFileAtomic(path, Buffer.from('newer'), { durable: false });
  assert.equal(readFileSync(path, 'utf8'), 'newer');
  assert.deepEqual(readdirSync(dir), ['f']);
});
