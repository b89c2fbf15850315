// Exit status is documented where users look for it: every command's help (`mtlsgate help
// COMMAND`, the generated docs/cli.md) has an "Exit status:" line, and it names only the codes
// of docs/cli-conventions.md (0 ok, 1 the thing checked has problems, 2 usage or I/O).
// Before session 16, who, keygen, certs, token, demo, completion, help and version had none.
// And no command colours its output or writes differently to a terminal than to a pipe.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, ensureBuilt, mtlsgate } from './helpers/cli.ts';

test('every command documents its exit status in its help, with the codes 0, 1 and 2 only', () => {
  ensureBuilt();
  const list = mtlsgate(['help']);
  assert.equal(list.code, 0);
  const commands = [...list.stdout.matchAll(/^ {2}([a-z]+) /gm)].map((m) => m[1]);
  assert.ok(commands.length >= 18, commands.join(' '));
  const missing: string[] = [];
  for (const name of commands) {
    const help = mtlsgate(['help', name]);
    assert.equal(help.code, 0, name);
    const m = /^Exit status: (.+(?:\n[^\n]+)*)/m.exec(help.stdout);
    if (m === null) {
      missing.push(name);
      continue;
    }
    const codes = [...m[1].matchAll(/\b(\d+) /g)].map((c) => Number(c[1]));
    assert.ok(codes.length > 0 && codes.every((c) => c <= 2), `${name}: ${m[0]}`);
  }
  assert.deepEqual(missing, []);
});

test('output is the same on a terminal as in a pipe, and never coloured (NO_COLOR has nothing to turn off)', () => {
  // util-linux script(1) runs the command on a pseudo-terminal.
  assert.equal(spawnSync('script', ['--version']).status, 0, 'script(1) (util-linux) is needed for a pseudo-terminal');
  const dir = mkdtempSync(join(tmpdir(), 'mtlsgate-tty-'));
  try {
    writeFileSync(join(dir, 'bad.yaml'), 'kind: api\nid: a\nproxy: {listen_path: /a, target_url: "http://127.0.0.1:9"}\nuse_keyless: "true"\n');
    for (const args of [
      ['check', dir],
      ['help', 'check'],
      ['check', dir, '--format', 'github'],
      ['fingerprint', join(dir, 'bad.yaml')],
    ]) {
      const piped = mtlsgate(args);
      // script(1) gives the command a pseudo-terminal for stdin, stdout and stderr, and copies both streams to its stdout.
      const tty = spawnSync('script', ['-qec', [CLI, ...args].map((a) => `'${a}'`).join(' '), '/dev/null'], {
        encoding: 'utf8',
        env: { ...process.env, TERM: 'xterm-256color', FORCE_COLOR: '1' },
      });
      const shown = tty.stdout.replaceAll('\r\n', '\n');
      assert.equal(tty.status, piped.code, args.join(' '));
      assert.ok(!shown.includes(String.fromCharCode(27)), `${args.join(' ')}: an escape sequence on a terminal`);
      for (const line of `${piped.stdout}${piped.stderr}`.split('\n').filter((l) => l !== '')) assert.ok(shown.includes(line), `${args.join(' ')}: ${line}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('habits from other tools get the flag this CLI uses: --output json, -json, -format, --no-color (before: "unknown flag --output", "unknown flag -j")', () => {
  const cases: [string[], RegExp][] = [
    [['check', '.', '--output', 'json'], /^mtlsgate check: unknown flag --output \(the output format is --format text\|json\|\.\.\.\)$/m],
    [['compile', '.', '--output=json'], /unknown flag --output \(the output format is --format text\|json\|\.\.\.; -o\/--out names the file it writes\)$/m],
    [['demo', '--output', 'x.json'], /^mtlsgate demo: unknown flag --output \(did you mean --out\?\)$/m],
    [['check', '.', '-json'], /^mtlsgate check: unknown flag -json \(did you mean --json\?\)$/m],
    [['who', '--bundle', 'b.json', 'api', '-format', 'csv'], /^mtlsgate who: unknown flag -format \(did you mean --format\?\)$/m],
    [['check', '.', '--no-color'], /^mtlsgate check: unknown flag --no-color \(mtlsgate never colours its output: nothing to turn off\)$/m],
  ];
  for (const [args, expected] of cases) {
    const r = mtlsgate(args);
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.stderr, expected);
  }
  // A short flag stays a short flag: no guess from a single letter.
  assert.match(mtlsgate(['check', '.', '-x']).stderr, /^mtlsgate check: unknown flag -x\n/);
});
