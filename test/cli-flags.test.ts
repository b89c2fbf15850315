// Issue 16 item 5 through the built CLI: one flag scheme. --format and -o/--out everywhere,
// -q/-v, --version and `version`, did-you-mean for commands and flags, `help COMMAND`, short
// parse errors, bash/zsh completion generated from the command registry, durations with
// units, errors that name the environment variable a value came from, unknown MTLSGATE_*.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { api, certFiles, removeConfigs, writeConfig } from './fixtures/compiler/helpers.ts';
import { CLI, ensureBuilt, mtlsgate, mtlsgateAsync, ROOT, sideBySide } from './helpers/cli.ts';

const VERSION = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version;
let good: string;
before(async () => {
  ensureBuilt();
  good = writeConfig({ ...(await certFiles()), 'apis/a.yaml': api('a', 'use_keyless: true\n') });
});
after(removeConfigs);

test('--version and `version` print the package version; help lists both', () => {
  assert.equal(mtlsgate(['--version']).stdout.trim(), VERSION);
  assert.equal(mtlsgate(['version']).stdout.trim(), VERSION);
  const help = mtlsgate(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^ {2}version +print the mtlsgate version/m);
  assert.match(help.stdout, /--version +print the version/);
  assert.match(help.stdout, /-q, --quiet/);
  assert.match(help.stdout, /-v, --verbose/);
  assert.match(help.stdout, /--format text\|json\|github/);
});

test('help COMMAND prints its usage; a mistyped command or flag gets a suggestion and a short error', () => {
  const h = mtlsgate(['help', 'diff']);
  assert.equal(h.code, 0);
  assert.match(h.stdout, /^usage: mtlsgate diff OLD NEW/);
  assert.equal(mtlsgate(['diff', '--help']).stdout, h.stdout);

  const cmd = mtlsgate(['chek', good]);
  assert.equal(cmd.code, 2);
  assert.match(cmd.stderr, /^mtlsgate: unknown command "chek" \(did you mean "check"\?\)/);
  assert.match(mtlsgate(['help', 'compil']).stderr, /did you mean "compile"/);

  const flag = mtlsgate(['check', good, '--fromat', 'json']);
  assert.equal(flag.code, 2);
  assert.match(flag.stderr, /^mtlsgate check: unknown flag --fromat \(did you mean --format\?\)\nusage: mtlsgate check /);
  assert.ok(flag.stderr.split('\n').length <= 4, `short: ${flag.stderr}`);
  assert.doesNotMatch(flag.stderr, /To specify a positional argument/, 'not the raw node:util text');
  assert.match(mtlsgate(['serve', '--tls-crt', 'x']).stderr, /unknown flag --tls-crt \(did you mean --tls-cert\?\)/);
  assert.match(mtlsgate(['check', good, '--format']).stderr, /--format needs a value/);
  assert.match(mtlsgate(['check', good, '--strict=yes']).stderr, /--strict takes no value/);
});

test('--format text|json|github is accepted by every command with output; -o/--out writes every output file', async () => {
  // The runs do not depend on each other: four at a time, checked in order.
  const commands = [['check', good], ['diff', good, good], ['token'], ['version']];
  const formats = ['text', 'json', 'github', 'xml'];
  const runs = commands.flatMap((args) => formats.map((f) => [...args, '--format', f]));
  const results = await sideBySide(runs, 4, (args) => mtlsgateAsync(args));
  for (const [i, args] of runs.entries()) {
    const [f, r] = [args.at(-1)!, results[i]!];
    if (f === 'xml') {
      assert.match(r.stderr, /--format must be text, json or github/);
      continue;
    }
    assert.equal(r.code, 0, `${args[0]} --format ${f}: ${r.stderr}`);
    if (f === 'json') assert.equal(JSON.parse(r.stdout).command, args[0]);
  }
  const out = join(good, 'long.json');
  const [long, short] = await Promise.all([mtlsgateAsync(['compile', good, '--out', out]), mtlsgateAsync(['compile', good, '-o', join(good, 'short.json')])]);
  assert.equal(long.code, 0);
  assert.equal(short.code, 0);
  assert.deepEqual(readFileSync(out), readFileSync(join(good, 'short.json')));
  const withOut = ['compile', 'portal', 'approve', 'demo'];
  const helps = await sideBySide(withOut, 4, (cmd) => mtlsgateAsync(['help', cmd]));
  for (const [i, cmd] of withOut.entries()) assert.match(helps[i]!.stdout, /-o, --out/, cmd);
});

test('-q keeps only errors, -v adds detail (anywhere on the line)', () => {
  const normal = mtlsgate(['check', good]);
  assert.match(normal.stderr, /ok: 1 API/);
  assert.equal(mtlsgate(['-q', 'check', good]).stderr, '');
  assert.equal(mtlsgate(['check', good, '--quiet']).stderr, '');
  assert.match(mtlsgate(['check', good, '-v']).stderr, /^timings: load \d+ ms/m);
  assert.match(mtlsgate(['check', join(good, 'nope'), '-q']).stderr, /cannot be read/, 'errors still show');
});

test('completion bash completes commands, flags and flag values from the registry', () => {
  const script = mtlsgate(['completion', 'bash']);
  assert.equal(script.code, 0);
  const complete = (...words: string[]) => {
    const line = ['mtlsgate', ...words];
    const r = spawnSync(
      'bash',
      ['-c', `eval "$(cat)"; COMP_WORDS=(${line.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${line.length - 1}; _mtlsgate; printf '%s\\n' "\${COMPREPLY[@]}"`],
      { input: script.stdout, encoding: 'utf8' },
    );
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.trim().split('\n').filter(Boolean);
  };
  assert.deepEqual(complete('ch'), ['check']);
  assert.ok(complete('').includes('completion'));
  assert.deepEqual(complete('check', '--for'), ['--format']);
  assert.deepEqual(complete('check', '--format', 'g'), ['github']);
  assert.ok(complete('serve', '--tls-').includes('--tls-cert'));
  assert.deepEqual(complete('serve', '--on-limiter-error', ''), ['allow', 'deny']);
  assert.deepEqual(complete('serve', '--log-level', 'd'), ['debug'], 'values after a placeholder: --log-level LEVEL  fatal|error|...');
  assert.deepEqual(complete('help', 'fin'), ['fingerprint']);
  // A command's fixed first word (import tyk, completion bash|zsh) completes; after it, files.
  assert.deepEqual(complete('import', ''), ['tyk']);
  assert.deepEqual(complete('completion', 'z'), ['zsh']);
  assert.equal(complete('import', 'tyk', '').includes('tyk'), false);

  const zsh = mtlsgate(['completion', 'zsh']);
  assert.equal(zsh.code, 0);
  assert.match(zsh.stdout, /^#compdef mtlsgate/);
  assert.match(zsh.stdout, /serve\) flags=\(.*--tls-cert.*\)/);
  assert.match(zsh.stdout, /check:--format\) compadd -- text json github/);
  assert.match(zsh.stdout, /import\) if \(\( CURRENT == 3 \)\); then compadd -- tyk; return; fi ;;/);
  assert.equal(spawnSync('zsh', ['-n'], { input: zsh.stdout }).status, 0, 'zsh parses it');
  assert.equal(mtlsgate(['completion', 'fish']).code, 2);
});

test('serve: durations take units, a bad value names its flag or variable, unknown MTLSGATE_* is warned about', () => {
  // Usage errors stop serve before it reads any file, so no certificate is needed here.
  const base = ['serve', '--bundle', 'b.json', '--tls-cert', 'c.pem', '--tls-key', 'k.pem'];
  const flag = mtlsgate([...base, '--drain-timeout', 'soon']);
  assert.equal(flag.code, 2);
  assert.match(flag.stderr, /--drain-timeout must be a duration like 500ms, 30s or 2m/);
  const env = mtlsgate(base, { env: { MTLSGATE_POLL_INTERVAL: 'often' } });
  assert.equal(env.code, 2);
  assert.match(env.stderr, /MTLSGATE_POLL_INTERVAL must be a duration like 500ms/);
  assert.match(mtlsgate(base, { env: { MTLSGATE_LISTEN: 'nowhere' } }).stderr, /MTLSGATE_LISTEN must be HOST:PORT/);
  assert.match(mtlsgate(base, { env: { MTLSGATE_ON_LIMITER_ERROR: 'maybe' } }).stderr, /MTLSGATE_ON_LIMITER_ERROR must be allow or deny/);
  const admin = mtlsgate([...base, '--admin', 'loopback']);
  assert.match(admin.stderr, /--admin must be HOST:PORT \(e\.g\. 127\.0\.0\.1:9901 or \[::1\]:9901\) or off/, "the admin port, not the gateway's 8443");
  const portal = mtlsgate(['portal', '--config', 'cfg', '-o', 'b.json', '--listen', 'nowhere']);
  assert.match(
    portal.stderr,
    /--listen must be HOST:PORT \(e\.g\. 127\.0\.0\.1:3000 or \[::1\]:3000\), not "nowhere"/,
    "the portal's port, not the gateway's 8443",
  );

  const typo = mtlsgate(base, { env: { MTLSGATE_BUNLDE: 'x.json' } });
  assert.match(typo.stderr, /warning: ignoring unknown environment variable MTLSGATE_BUNLDE \(did you mean MTLSGATE_BUNDLE\?\)/);
});

test('serve accepts 30s, 500ms, 2m and 1m30s (it gets past flag parsing to the bundle)', () => {
  const dir = writeConfig({});
  writeFileSync(join(dir, 'c.pem'), '');
  for (const d of ['30s', '500ms', '2m', '1m30s']) {
    const r = mtlsgate(['serve', '--bundle', join(dir, 'none.json'), '--tls-cert', join(dir, 'c.pem'), '--tls-key', join(dir, 'c.pem'), '--drain-timeout', d]);
    assert.equal(r.code, 2);
    assert.doesNotMatch(r.stderr, /duration/, d);
    assert.match(r.stderr, /not a usable certificate|cannot read/, d);
  }
  void CLI;
});

test('serve refuses a duration without a unit (30 is not silently 30 ms), from a flag or its variable, with the fix', () => {
  const base = ['serve', '--bundle', 'b.json', '--tls-cert', 'c.pem', '--tls-key', 'k.pem'];
  const flag = mtlsgate([...base, '--upstream-timeout', '30']);
  assert.equal(flag.code, 2);
  assert.match(
    flag.stderr,
    /--upstream-timeout "30" has no unit: write 30s for 30 seconds \(or 30000ms\); a bare number used to mean milliseconds: 30ms keeps that/,
  );
  const drain = mtlsgate([...base, '--drain-timeout', '10']);
  assert.equal(drain.code, 2);
  assert.match(drain.stderr, /--drain-timeout "10" has no unit: write 10s/);
  const env = mtlsgate(base, { env: { MTLSGATE_CLIENT_IDLE_TIMEOUT: '45' } });
  assert.equal(env.code, 2);
  assert.match(env.stderr, /MTLSGATE_CLIENT_IDLE_TIMEOUT "45" has no unit: write 45s/);
  // 0 is no duration at all, with or without a unit.
  assert.match(mtlsgate([...base, '--drain-timeout', '0']).stderr, /--drain-timeout must be a positive duration/);
});

test('the docs show the one flag scheme: the portal and approve write their bundle with -o, not the old --bundle OUT', () => {
  const docs = ['README.md', 'portal/README.md', 'docs/portal.md', 'docs/quickstart.md', 'docs/cli-conventions.md'];
  for (const doc of docs) {
    const text = readFileSync(join(ROOT, doc), 'utf8');
    for (const line of text.split('\n'))
      assert.equal(/mtlsgate (portal|approve)\b.*--bundle\b|`mtlsgate approve` without `--bundle`/.test(line), false, `${doc}: ${line}`);
  }
});

test('YAML from standard input: relative paths resolve against the current directory, where reads are confined (docs/cli-conventions.md)', () => {
  const yaml = (path: string) =>
    `kind: api\nid: s\nproxy: { listen_path: /s/, target_url: http://127.0.0.1:9 }\nuse_keyless: true\nuse_mutual_tls_auth: true\nclient_certificates: [${path}]\n`;
  const inside = mtlsgate(['check', '-'], { cwd: good, input: yaml('certs/alice.pem') });
  assert.equal(inside.code, 0, inside.stderr);
  const outside = mtlsgate(['check', '-'], { cwd: join(good, 'apis'), input: yaml('../certs/alice.pem') });
  assert.equal(outside.code, 1);
  assert.match(outside.stderr, /<stdin>:6:23: error E_PATH_OUTSIDE/);
  const allowed = mtlsgate(['check', '-', '--allow-outside', '../certs'], { cwd: join(good, 'apis'), input: yaml('../certs/alice.pem') });
  assert.equal(allowed.code, 0, allowed.stderr);
});
