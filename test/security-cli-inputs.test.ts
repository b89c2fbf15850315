// docs/security.md section 41: what the CLI reads besides requests and the portal. Files named
// on the command line are read bounded and only when regular; command output escapes hidden
// characters from certificates; `import tyk` reads a definition's certificate paths only inside
// its inputs (or --allow-outside) and walks a directory of symlink loops once.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, copyFileSync, mkdirSync, openSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { compileDir } from '../compiler/index.ts';
import { api, removeConfigs, TOKEN_A, writeConfig } from './fixtures/compiler/helpers.ts';
import { CLI, ensureBuilt } from './helpers/cli.ts';

after(removeConfigs);
ensureBuilt();

/** The built CLI; `stdin`: a file to give as standard input. Killed after `ms` (a hang is a failure, not a stuck suite). */
function cli(args: string[], cwd: string, stdin?: string, ms = 15_000) {
  const fd = stdin === undefined ? 'pipe' : openSync(stdin, 'r');
  try {
    const r = spawnSync(CLI, args, { cwd, encoding: 'utf8', timeout: ms, stdio: [fd, 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 });
    return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, out: `${r.stdout}${r.stderr}` };
  } finally {
    if (typeof fd === 'number') closeSync(fd);
  }
}

function mkfifo(path: string): void {
  const r = spawnSync('mkfifo', [path]);
  assert.equal(r.status, 0, String(r.stderr));
}

/** A self-signed CA certificate whose subject holds a right-to-left override, a zero-width space and a C1 CSI. */
function oddCertificate(dir: string): string {
  const made = spawnSync(
    'openssl',
    ['req', '-x509', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'odd-key.pem')]
      .concat(['-out', join(dir, 'odd.pem'), '-days', '30', '-utf8', '-subj', '/CN=evil\u202egpj.exe\u200b\u009b31m'])
      .concat(['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=keyCertSign,digitalSignature', '-addext', 'extendedKeyUsage=clientAuth']),
    { encoding: 'utf8' },
  );
  assert.equal(made.status, 0, made.stderr);
  return join(dir, 'odd.pem');
}

const HIDDEN = /[\u202e\u200b\u009b]/;

test('every file named on the command line that is a named pipe or a device, or standard input without end, is refused at once, naming it', () => {
  const dir = writeConfig({ 'apis/a.yaml': api('a', 'use_keyless: true\n') });
  mkdirSync(join(dir, 'tyk'));
  mkfifo(join(dir, 'fifo'));
  symlinkSync('/dev/zero', join(dir, 'tyk', 'zero.json'));
  const built = cli(['compile', '.', '-o', 'bundle.json'], dir);
  assert.equal(built.code, 0, built.out);
  const cases: [string[], RegExp, string?][] = [
    [['fingerprint', 'fifo'], /mtlsgate fingerprint: cannot read fifo: it is a named pipe, not a regular file/],
    [['fingerprint', '/dev/zero'], /cannot read \/dev\/zero: it is a character device, not a regular file/],
    [['fingerprint', '-'], /cannot read standard input: it is more than the 16777216 bytes read at most/, '/dev/zero'],
    [['diff', 'fifo', 'bundle.json'], /mtlsgate diff: cannot read fifo: it is a named pipe, not a regular file/],
    [['diff', '-', 'bundle.json'], /cannot read standard input: it is more than the 536870912 bytes read at most/, '/dev/zero'],
    [['explain', '--bundle', 'fifo', '/a/'], /mtlsgate explain: --bundle fifo: it is a named pipe, not a regular file/],
    [['explain', '--bundle', 'bundle.json', '--cert', '/dev/zero', '/a/'], /--cert \/dev\/zero: it is a character device, not a regular file/],
    [['who', '--bundle', '/dev/zero', 'a'], /mtlsgate who: --bundle \/dev\/zero: it is a character device, not a regular file/],
    [['import', 'tyk', 'fifo', '-o', 'out1'], /fifo#: fatal: cannot read: it is a named pipe, not a regular file/],
    [['import', 'tyk', 'tyk', '-o', 'out2'], /tyk\/zero\.json#: fatal: cannot read: it is a character device, not a regular file/],
    [['compile', '.', '-o', 'signed.json', '--sign', 'fifo'], /--sign fifo: it is a named pipe, not a regular file/],
    [
      ['check', '-'],
      /E_FILE_TOO_LARGE|standard input is not read: it is more than the 67108864 bytes read at most \(a config file holds at most 64 MiB\)/,
      '/dev/zero',
    ],
  ];
  for (const [args, message, stdin] of cases) {
    const started = Date.now();
    const r = cli(args, dir, stdin);
    assert.equal(r.signal, null, `${args.join(' ')}: still running after 15 s (killed)`);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.out}`);
    assert.match(r.out, message, args.join(' '));
    assert.ok(Date.now() - started < 10_000, `${args.join(' ')}: ${Date.now() - started} ms`);
  }
  const json = cli(['check', '-', '--format', 'json'], dir, '/dev/zero');
  assert.equal(JSON.parse(json.stdout).errors[0].code, 'E_FILE_TOO_LARGE', json.out);
});

test('fingerprint, who, explain and their JSON show bidi overrides, zero-width and C1 control characters from a certificate as \\uXXXX', () => {
  const dir = writeConfig({
    'apis/pinned.yaml': api('pinned', 'use_keyless: true\nuse_mutual_tls_auth: true\nclient_certificates: [../certs/odd.pem]\n'),
  });
  mkdirSync(join(dir, 'certs'));
  const odd = oddCertificate(join(dir, 'certs'));
  const escaped = 'CN=evil\\u202egpj.exe\\u200b\\u009b31m';

  const fp = cli(['fingerprint', odd], dir);
  assert.equal(fp.code, 0, fp.out);
  assert.ok(fp.stdout.includes(escaped), fp.stdout);
  assert.doesNotMatch(fp.stdout, HIDDEN);
  // JSON: the same value to a parser, escaped in the text a terminal shows.
  const fpJson = cli(['fingerprint', odd, '--format', 'json'], dir);
  assert.doesNotMatch(fpJson.stdout, HIDDEN);
  assert.equal(JSON.parse(fpJson.stdout).certificates[0].subject, 'CN=evil\u202egpj.exe\u200b\u009b31m');

  assert.equal(cli(['compile', '.', '-o', 'bundle.json'], dir).code, 0);
  const who = cli(['who', '--bundle', 'bundle.json', 'pinned', '--certs', 'certs'], dir);
  assert.equal(who.code, 0, who.out);
  assert.ok(who.stdout.includes(escaped), who.stdout);
  assert.doesNotMatch(who.out, HIDDEN);
  // A link back to the directory above is walked once (before: ELOOP ended who).
  symlinkSync('.', join(dir, 'certs', 'again'));
  const whoLoop = cli(['who', '--bundle', 'bundle.json', 'pinned', '--certs', 'certs'], dir);
  assert.equal(whoLoop.code, 0, whoLoop.out);
  assert.equal(whoLoop.stdout, who.stdout);
  const whoCsv = cli(['who', '--bundle', 'bundle.json', 'pinned', '--certs', 'certs', '--format', 'csv'], dir);
  assert.doesNotMatch(whoCsv.out, HIDDEN);
  const whoJson = cli(['who', '--bundle', 'bundle.json', 'pinned', '--certs', 'certs', '--format', 'json'], dir);
  assert.doesNotMatch(whoJson.stdout, HIDDEN);
  assert.equal(JSON.parse(whoJson.stdout).rows[0].subject, 'CN=evil\u202egpj.exe\u200b\u009b31m');

  const explain = cli(['explain', '--bundle', 'bundle.json', '--cert', odd, '/pinned/'], dir);
  assert.equal(explain.code, 0, explain.out);
  assert.ok(explain.stdout.includes(escaped), explain.stdout);
  assert.doesNotMatch(explain.out, HIDDEN);
});

test('import tyk reads a certificate path only inside its inputs or under --allow-outside: a path elsewhere is not looked at, existing or not', () => {
  const dir = writeConfig({});
  const input = join(dir, 'in');
  const host = join(dir, 'host');
  mkdirSync(input);
  mkdirSync(host);
  const odd = oddCertificate(host);
  symlinkSync(odd, join(input, 'linked.pem')); // inside the inputs by name, outside once resolved
  copyFileSync(odd, join(input, 'inside.pem'));
  const def = {
    api_id: 'partner',
    name: 'Partner',
    use_keyless: true,
    use_mutual_tls_auth: true,
    proxy: { listen_path: '/partner/', target_url: 'http://127.0.0.1:9' },
    client_certificates: ['/etc/shadow', '/nonexistent-cliaudit/x.pem', odd, join(input, 'linked.pem'), join(input, 'inside.pem')],
  };
  writeFileSync(join(input, 'partner.json'), JSON.stringify(def));

  const r = cli(['import', 'tyk', 'in', '-o', 'out', '--format', 'json'], dir);
  const body = JSON.parse(r.stdout);
  const notCopied = (path: string) =>
    body.not_converted.find((f: { message: string }) => f.message.includes(`certificate file ${JSON.stringify(path)} not copied`));
  for (const path of ['/etc/shadow', '/nonexistent-cliaudit/x.pem', odd, join(input, 'linked.pem')]) {
    const f = notCopied(path);
    assert.ok(f, `${path}: ${r.stdout}`);
    assert.match(f.message, /not copied \(outside the Tyk inputs: .* --allow-outside .*; this one was not looked at\)/);
  }
  // What a file elsewhere holds, or whether it is there, does not show.
  const shadow = notCopied('/etc/shadow').message.replaceAll('/etc/shadow', 'P').replaceAll('certs/shadow.pem', 'N');
  const missing = notCopied('/nonexistent-cliaudit/x.pem').message.replaceAll('/nonexistent-cliaudit/x.pem', 'P').replaceAll('certs/x.pem', 'N');
  assert.equal(shadow, missing);
  assert.doesNotMatch(r.stdout, /ENOENT|EACCES|holds no PEM certificate/);
  assert.ok(readFileSync(join(dir, 'out', 'certs', 'inside.pem'), 'utf8').includes('BEGIN CERTIFICATE'));

  const allowed = cli(['import', 'tyk', 'in', '-o', 'out2', '--allow-outside', host, '--format', 'json'], dir);
  const copied = JSON.parse(allowed.stdout).notes.map((n: { message: string }) => n.message);
  assert.ok(
    copied.some((m: string) => m.startsWith(`certificate file ${JSON.stringify(odd)} copied to certs/odd.pem`)),
    allowed.stdout,
  );
  assert.ok(
    copied.some((m: string) => m.startsWith(`certificate file ${JSON.stringify(join(input, 'linked.pem'))} copied`)),
    allowed.stdout,
  );
  assert.ok(notCopied('/etc/shadow'), 'still not read with another --allow-outside');
});

test('import tyk walks a directory whose symlinks loop back (two links to ".") once', () => {
  const dir = writeConfig({});
  const input = join(dir, 'in');
  mkdirSync(input);
  symlinkSync('.', join(input, 'a'));
  symlinkSync('.', join(input, 'b'));
  writeFileSync(
    join(input, 'open.json'),
    JSON.stringify({ api_id: 'open', name: 'Open', use_keyless: true, proxy: { listen_path: '/open/', target_url: 'http://127.0.0.1:9' } }),
  );
  const r = cli(['import', 'tyk', 'in', '-o', 'out'], dir);
  assert.equal(r.signal, null, 'still walking after 15 s (killed)');
  assert.equal(r.code, 0, r.out);
  assert.match(r.stdout, /wrote 1 API, 0 policies, 0 keys to out/);
});

test('import tyk: JSON nested past 100 levels is a fatal input naming the file, not a stack overflow', () => {
  const dir = writeConfig({ 'in/deep.json': `${'['.repeat(20_000)}${']'.repeat(20_000)}` });
  const r = cli(['import', 'tyk', 'in', '-o', 'out'], dir);
  assert.equal(r.code, 2, r.out);
  assert.match(r.stderr, /in\/deep\.json#: fatal: arrays and objects nested more than 100 levels deep/);
  assert.doesNotMatch(r.out, /call stack/);
});

test('rate limits and quotas past what the limiter can hold are refused at their field; .inf and .nan are named as such', async () => {
  const dir = writeConfig({
    'apis/a.yaml': api('a', 'use_keyless: false\n'),
    'policies/p.yaml': 'kind: policy\nid: p\nrate: 1\nper: 1e300\nquota_max: 9007199254740993\nquota_renewal_rate: 1e300\naccess_rights: {a: {}}\n',
    'policies/slow.yaml': 'kind: policy\nid: slow\nrate: 1e-300\nper: 1\naccess_rights: {a: {}}\n',
    'policies/days.yaml': 'kind: policy\nid: days\nquota_max: 5\nquota_renewal_rate: 40000000d\naccess_rights: {a: {}}\n',
    'keys/k.yaml': `kind: key\nid: k\ntoken_sha256: ${TOKEN_A}\nrate: .inf\nper: .nan\naccess_rights: {a: {}}\n`,
  });
  const r = await compileDir(dir);
  const at = (file: string, line: number) => r.diagnostics.filter((d) => d.file === file && d.line === line).map((d) => `${d.code}: ${d.message}`);
  assert.deepEqual(at('policies/p.yaml', 4), ['E_FIELD_VALUE: per 1e+300 s is longer than a limit may last: at most 3155760000 s (100 years)']);
  assert.deepEqual(at('policies/p.yaml', 5), [
    'E_FIELD_VALUE: quota_max 9007199254740992 is past 9007199254740991, the largest count kept exactly (for no limit, leave it out or write -1)',
  ]);
  assert.deepEqual(at('policies/p.yaml', 6), ['E_FIELD_VALUE: quota_renewal_rate 1e+300 s is longer than a limit may last: at most 3155760000 s (100 years)']);
  assert.deepEqual(at('policies/slow.yaml', 3), [
    'E_FIELD_VALUE: rate 1e-300 per 1 s admits one request every 1e+300 s: at most 3155760000 s (100 years) between two (raise rate, or lower per)',
  ]);
  assert.deepEqual(at('policies/days.yaml', 4), [
    'E_FIELD_VALUE: quota_renewal_rate 3.456e+12 s is longer than a limit may last: at most 3155760000 s (100 years)',
  ]);
  assert.deepEqual(at('keys/k.yaml', 4), ['E_FIELD_TYPE: rate must be a number, got infinity (.inf, or a number past 1.8e308)']);
  assert.deepEqual(at('keys/k.yaml', 5), [
    'E_FIELD_TYPE: per must be a positive number of seconds or a duration (30s, 1m, 1h, 1d, 1m30s; second, minute, hour, day), got NaN (.nan)',
  ]);
  assert.equal(r.bundle, null);
});
