// A newcomer's first commands. `npm test` on a machine without a tool the tests drive stops at
// once with ONE line naming what is missing and how to install it (scripts/ensure-deps.mjs,
// the pretest hook; as root on Debian it installs them itself). `mtlsgate check examples` on a
// fresh clone (no examples/certs yet) says on its first line what to run.
import assert from 'node:assert/strict';
import { chmodSync, cpSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { tempDir } from './helpers/ops-fixtures.ts';
import { CLI, run } from './helpers/serve-fixtures.ts';

const ROOT = join(import.meta.dirname, '..');

test('pretest without curl, redis-server, chromium and not root: one line naming them and the install command, exit 1', async () => {
  const t = tempDir('front-door');
  try {
    // A PATH holding node and nothing else; run as nobody, who cannot install anything.
    const bin = join(t.dir, 'bin');
    mkdirSync(bin);
    symlinkSync(process.execPath, join(bin, 'node'));
    // nobody must be able to read the script: the checkout may sit in a directory only root
    // can enter (a clone in \`mktemp -d\`), so run a copy beside its installed-dependency markers.
    chmodSync(t.dir, 0o755);
    cpSync(join(ROOT, 'scripts', 'ensure-deps.mjs'), join(t.dir, 'scripts', 'ensure-deps.mjs'));
    for (const marker of ['node_modules/.package-lock.json', 'node_modules/esbuild/package.json', 'node_modules/undici/package.json']) {
      mkdirSync(join(t.dir, marker, '..'), { recursive: true });
      writeFileSync(join(t.dir, marker), '{}');
    }
    const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));
    assert.ok(setpriv, 'setpriv (util-linux) to run the script as nobody');
    const r = await run(setpriv, ['--reuid=65534', '--regid=65534', '--clear-groups', join(bin, 'node'), join(t.dir, 'scripts', 'ensure-deps.mjs'), '--test'], {
      env: { PATH: bin, npm_lifecycle_event: 'pretest' },
      cwd: t.dir,
    });
    assert.equal(r.code, 1, r.stderr);
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, `one line, got:\n${r.stderr}`);
    assert.match(lines[0], /^mtlsgate: npm test needs curl, openssl, redis-server, redis-cli, chromium, zsh, not found on PATH; install with: /);
    assert.match(lines[0], /apt-get install -y curl openssl redis-server redis-tools chromium zsh/);
  } finally {
    t.cleanup();
  }
});

test('pretest with every tool present: silent, exit 0', async () => {
  const r = await run(process.execPath, [join(ROOT, 'scripts', 'ensure-deps.mjs'), '--test']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
});

test('`mtlsgate check examples` on a fresh clone: the first line says what to run', async () => {
  const t = tempDir('fresh-examples');
  try {
    const examples = join(t.dir, 'examples');
    cpSync(join(ROOT, 'examples'), examples, {
      recursive: true,
      filter: (src) => !src.includes(`${join('examples', 'certs')}`) && !src.includes(join('keys', 'portal')),
    });
    const r = await run(process.execPath, [CLI, 'check', 'examples'], { cwd: t.dir });
    assert.equal(r.code, 1);
    const first = (r.stderr + r.stdout).split('\n')[0];
    assert.match(
      first,
      /^hint: examples\/certs does not exist \(\d+ certificate files? the config names\): they are the demo certificates; run `npm start` or `mtlsgate certs examples\/certs` first$/,
    );
    // Doing what it says makes the check pass.
    assert.equal((await run(process.execPath, [CLI, 'certs', join('examples', 'certs')], { cwd: t.dir })).code, 0);
    const again = await run(process.execPath, [CLI, 'check', 'examples'], { cwd: t.dir });
    assert.equal(again.code, 0, again.stderr);
  } finally {
    t.cleanup();
  }
});
