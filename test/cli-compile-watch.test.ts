// `mtlsgate compile DIR -o OUT --watch`, spawned from the built dist/mtlsgate.mjs on real files:
// each change rewrites OUT with the bytes `compile` gives for the same tree (a key file edited,
// a certificate file rewritten in place), only the changed key file resolved again (the line
// says "incremental"); a change with errors prints file:line:col diagnostics and leaves OUT as
// it was; SIGINT and SIGTERM end it with exit 0. With --cache it starts from the snapshot a
// previous compile left (the line says how many key files were resolved again), falls back to a
// full compile with a one-line note when the snapshot is stale, and writes the snapshot back.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { api, certFiles, removeConfigs, testPki, writeConfig } from './fixtures/compiler/helpers.ts';

const ROOT = join(import.meta.dirname, '..');
const CLI = join(ROOT, 'dist', 'mtlsgate.mjs');
const outDir = mkdtempSync(join(tmpdir(), 'mtlsgate-watch-out-'));

const ALICE = 'kind: key\nid: alice\ncertificate: ../certs/alice.pem\naccess_rights:\n  profile: {}\n';

before(() => {
  if (!existsSync(CLI)) spawnSync(process.execPath, [join(ROOT, 'scripts', 'build.mjs')], { cwd: ROOT, stdio: 'inherit' });
});
after(() => {
  removeConfigs();
  rmSync(outDir, { recursive: true, force: true });
});

/** A running `compile --watch`: its stderr as lines, and a wait for the next line matching a pattern. */
class Watcher {
  readonly child: ChildProcess;
  private text = '';
  private seen = 0;
  readonly exited: Promise<number | null>;

  constructor(args: string[]) {
    this.child = spawn(process.execPath, [CLI, 'compile', ...args, '--watch'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (s: string) => {
      this.text += s;
    });
    this.exited = new Promise((res) => this.child.once('exit', (code) => res(code)));
  }

  /** The output after the last wait, once it matches `pattern` (searched from there on). */
  async next(pattern: RegExp, timeoutMs = 20_000): Promise<string> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const rest = this.text.slice(this.seen);
      const m = pattern.exec(rest);
      if (m) {
        this.seen += m.index + m[0].length;
        return rest.slice(0, m.index + m[0].length);
      }
      if (Date.now() > until) throw new Error(`no ${pattern} in:\n${this.text}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

/** Two APIs, alice and bob in a key file each (alice reaches profile). */
async function twoKeysConfig(): Promise<string> {
  return writeConfig({
    ...(await certFiles()),
    'apis/profile.yaml': api('profile', 'auth:\n  use_certificate: true\n'),
    'apis/orders.yaml': api('orders', 'auth:\n  use_certificate: true\n'),
    'keys/alice.yaml': ALICE,
    'keys/bob.yaml': 'kind: key\nid: bob\ncertificate: ../certs/bob.pem\naccess_rights:\n  profile: {}\n',
  });
}

function compileRef(dir: string): Buffer {
  const ref = join(outDir, `ref-${Math.random().toString(36).slice(2)}.json`);
  const r = spawnSync(process.execPath, [CLI, 'compile', dir, '-o', ref], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  return readFileSync(ref);
}

test('compile --watch: a key file edit, a bad edit, a certificate rewritten in place', async () => {
  const pki = await testPki();
  const dir = await twoKeysConfig();
  const out = join(outDir, 'bundle.json');
  const w = new Watcher([dir, '-o', out]);
  try {
    const first = await w.next(/watching .*\n/);
    assert.match(first, /compiled .*: wrote .*bundle\.json in \d+ ms \(full\): 2 APIs, 2 keys, 2 certificates, digest sha256:[0-9a-f]{64}/);
    assert.ok(readFileSync(out).equals(compileRef(dir)), 'the first bundle is what compile writes');

    // A key file edited: alice now reaches orders too.
    let before = readFileSync(out);
    writeFileSync(join(dir, 'keys/alice.yaml'), `${ALICE}  orders: {}\n`);
    const line = await w.next(/keys\/alice\.yaml changed: wrote .* in (\d+) ms \((\w+)\).*\n/);
    assert.match(line, /\(incremental\)/, 'only the changed key file is resolved again');
    const edited = readFileSync(out);
    assert.ok(!edited.equals(before), 'OUT changed');
    assert.ok(edited.equals(compileRef(dir)), 'OUT is the bytes of a fresh compile of the same tree');

    // A change that does not compile: diagnostics with file:line:col, OUT as it was.
    before = edited;
    writeFileSync(join(dir, 'keys/alice.yaml'), 'kind: key\nid: alice\ncertificate: ../certs/alice.pem\naccess_rights:\n  nosuchapi: {}\n');
    const failed = await w.next(/\d+ errors? in \d+ ms; .*bundle\.json left as it was\n[\s\S]*?\d+ errors?[^\n]*\n/);
    assert.match(failed, /keys\/alice\.yaml changed: 1 error/);
    assert.match(failed, /keys\/alice\.yaml:5:3: error E_\w+/);
    assert.ok(readFileSync(out).equals(before), 'a failed change leaves OUT as it was');

    // Fixed again, then a certificate file rewritten in place (same inode): alice's is now carol's.
    writeFileSync(join(dir, 'keys/alice.yaml'), ALICE);
    await w.next(/keys\/alice\.yaml changed: wrote .*\n/);
    before = readFileSync(out);
    writeFileSync(join(dir, 'certs/alice.pem'), pki.carol.certPem);
    const certLine = await w.next(/certs\/alice\.pem changed: wrote .*\n/);
    assert.match(certLine, /\((incremental|full)\)/);
    const recerted = readFileSync(out);
    assert.ok(!recerted.equals(before), 'the new certificate is in OUT');
    assert.ok(recerted.equals(compileRef(dir)), 'OUT is the bytes of a fresh compile after the certificate change');

    w.child.kill('SIGINT');
    assert.equal(await w.exited, 0, 'SIGINT ends it with exit 0');
  } finally {
    w.child.kill('SIGKILL');
  }
});

test('compile --watch --cache: starts from the snapshot, writes it back; a stale one falls back to a full compile', async () => {
  const dir = await twoKeysConfig();
  const cache = join(outDir, 'cache');
  const out = join(outDir, 'cached.json');
  const primed = spawnSync(process.execPath, [CLI, 'compile', dir, '-o', out, '--cache', cache], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(primed.status, 0, primed.stderr);
  const compiled = readFileSync(out);
  const run = async (steps: (w: Watcher) => Promise<void>) => {
    const w = new Watcher([dir, '-o', out, '--cache', cache]);
    try {
      await steps(w);
      w.child.kill('SIGTERM');
      assert.equal(await w.exited, 0);
    } finally {
      w.child.kill('SIGKILL');
    }
  };
  await run(async (w) => {
    // Both key files taken from the snapshot: nothing compiled from scratch.
    const first = await w.next(/watching .*\n/);
    assert.doesNotMatch(first, /not used/);
    assert.match(first, /compiled .*: wrote .*cached\.json in \d+ ms \(snapshot: 0 key files resolved again, 2 kept\): 2 APIs, 2 keys/);
    assert.ok(readFileSync(out).equals(compiled), 'the first bundle is what compile writes');
    writeFileSync(join(dir, 'keys/alice.yaml'), `${ALICE}  orders: {}\n`);
    const line = await w.next(/keys\/alice\.yaml changed: wrote .*\n/);
    assert.match(line, /\(snapshot: 1 key file resolved again, 1 kept\)/);
    assert.ok(readFileSync(out).equals(compileRef(dir)), 'OUT is the bytes of a fresh compile of the same tree');
  });
  // Stale: an API changed while nothing watched. One line says so; then everything is compiled.
  writeFileSync(join(dir, 'apis/orders.yaml'), api('orders', 'auth:\n  use_certificate: true\n', '/orders-v2/'));
  await run(async (w) => {
    const first = await w.next(/watching .*\n/);
    assert.match(first, /the snapshot in .*cache was not used \(APIs, policies or options changed\): compiled everything\n/);
    assert.match(first, /\(full: snapshot not used: APIs, policies or options changed\): 2 APIs, 2 keys/);
    // The full compile wrote the snapshot back: the next change patches it.
    writeFileSync(join(dir, 'keys/bob.yaml'), 'kind: key\nid: bob\ncertificate: ../certs/bob.pem\naccess_rights:\n  orders: {}\n');
    const line = await w.next(/keys\/bob\.yaml changed: wrote .*\n/);
    assert.match(line, /\(snapshot: 1 key file resolved again, 1 kept\)/);
    assert.ok(readFileSync(out).equals(compileRef(dir)));
  });
});

test('compile --watch: SIGTERM exits 0; a config with errors at the start writes nothing and keeps watching', async () => {
  const dir = writeConfig({
    'apis/profile.yaml': api('profile', 'auth:\n  use_certificate: true\n'),
    'keys/k.yaml': 'kind: key\nid: k\n',
  });
  const out = join(outDir, 'never.json');
  const w = new Watcher([dir, '-o', out]);
  try {
    const first = await w.next(/watching .*\n/);
    assert.match(first, /compiled .*: 1 error in \d+ ms; .*never\.json left as it was/);
    assert.match(first, /keys\/k\.yaml:2:5: error E_KEY_NO_CREDENTIAL/);
    assert.equal(existsSync(out), false);
    writeFileSync(join(dir, 'keys/k.yaml'), `kind: key\nid: k\ntoken_sha256: ${'d'.repeat(64)}\naccess_rights:\n  profile: {}\n`);
    await w.next(/keys\/k\.yaml changed: wrote .*never\.json/);
    assert.ok(readFileSync(out).equals(compileRef(dir)));
    w.child.kill('SIGTERM');
    assert.equal(await w.exited, 0, 'SIGTERM ends it with exit 0');
  } finally {
    w.child.kill('SIGKILL');
  }
});

test('compile --watch: refused with -, -o -, --shards, --format json and on check', () => {
  const run = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 30_000 });
  for (const args of [
    ['compile', '-', '-o', 'x.json', '--watch'],
    ['compile', '.', '-o', '-', '--watch'],
    ['compile', '.', '-o', join(outDir, 'd'), '--shards', '4', '--watch'],
    ['compile', '.', '-o', 'x.json', '--format', 'json', '--watch'],
    ['check', '.', '--watch'],
  ]) {
    const r = run(args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /--watch/);
  }
});
