// Issue 16 item 5, "--format text|json|github everywhere", through the built CLI: every
// command that prints a result documents --format and answers --format json with the envelope
// of docs/cli-conventions.md; keygen and certs name files and never print key material;
// approve reports a config that does not compile with the diagnostics shape of check.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createPublicKey, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { keyId } from '../bundle/sign.ts';
import { renderKeyFile } from '../portal/key-file.ts';
import { ensureBuilt, mtlsgate, mtlsgateAsync, sideBySide } from './helpers/cli.ts';
import { tempDir } from './helpers/ops-fixtures.ts';
import { freshClient, writePortalConfig } from './helpers/portal-fixtures.ts';
import { demoPki } from './helpers/serve-fixtures.ts';

const t = tempDir('cli-formats');
before(() => ensureBuilt());
after(() => t.cleanup());

/** Commands that print no result of their own: a server, a script, the help. */
const NO_RESULT = ['serve', 'portal', 'demo', 'completion', 'help'];

/** Runs the CLI with --format json; the exit code and the parsed envelope (stdout must be exactly one JSON value). */
function json(args: string[], cwd?: string) {
  const r = mtlsgate([...args, '--format', 'json'], { cwd });
  const envelope: ReturnType<typeof JSON.parse> = (() => {
    try {
      return JSON.parse(r.stdout);
    } catch {
      throw new Error(`${args.join(' ')}: stdout is not one JSON value (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
    }
  })();
  assert.equal(envelope.schema_version, 1);
  assert.equal(envelope.command, args[0]);
  assert.ok(Array.isArray(envelope.errors) && Array.isArray(envelope.warnings));
  return { code: r.code, stderr: r.stderr, stdout: r.stdout, envelope };
}

test('every command that prints a result documents --format and names json (the audit of docs/cli-conventions.md)', async () => {
  const overview = mtlsgate(['help']).stdout;
  const names = [...overview.matchAll(/^ {2}([a-z]+) {2,}/gm)].map((m) => m[1]!);
  assert.ok(names.includes('keygen') && names.includes('approve'), overview);
  const withResult = names.filter((name) => !NO_RESULT.includes(name));
  const helps = await sideBySide(withResult, 4, (name) => mtlsgateAsync(['help', name]));
  const missing = withResult.filter((_name, i) => !/--format (F|text\|json)/.test(helps[i]!.stdout));
  assert.deepEqual(missing, [], 'commands with a result but no --format json');
});

test('keygen --format json: the two file paths and the key id, no key material; an existing file is an "exists" error, exit 2', () => {
  const r = json(['keygen', 'signing'], t.dir);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.envelope.ok, true);
  assert.equal(r.envelope.key, 'signing.key');
  assert.equal(r.envelope.public_key, 'signing.pub');
  const pub = readFileSync(join(t.dir, 'signing.pub'), 'utf8');
  assert.equal(r.envelope.key_id, keyId(createPublicKey(pub)));
  assert.equal(statSync(join(t.dir, 'signing.key')).mode & 0o777, 0o600);
  const privateKey = readFileSync(join(t.dir, 'signing.key'), 'utf8');
  const body = (pem: string) => pem.split('\n').filter((l) => l !== '' && !l.startsWith('-----'))[0]!;
  assert.ok(!r.stdout.includes(body(privateKey)) && !r.stdout.includes('PRIVATE KEY'), 'no private key in the JSON');
  assert.ok(!r.stdout.includes(body(pub)), 'no key material at all');

  const again = json(['keygen', 'signing'], t.dir);
  assert.equal(again.code, 2);
  assert.equal(again.envelope.ok, false);
  assert.deepEqual(again.envelope.errors, [
    { code: 'exists', message: 'signing.key exists; not overwriting it (remove it or pick another NAME)', file: 'signing.key' },
  ]);
  assert.equal(readFileSync(join(t.dir, 'signing.key'), 'utf8'), privateKey, 'untouched');
  const usage = json(['keygen'], t.dir);
  assert.equal(usage.code, 2);
  assert.equal(usage.envelope.errors[0].code, 'usage');
});

test('certs --format json: each file with its fingerprint and role, no key material; refusing to overwrite is an "exists" error', () => {
  const dir = join(t.dir, 'pki');
  const r = json(['certs', dir, '--host', 'gw.example.com']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.envelope.ok, true);
  assert.equal(r.envelope.alg, 'ec');
  const byName = Object.fromEntries(r.envelope.certificates.map((c: Record<string, unknown>) => [c.name, c]));
  assert.deepEqual(Object.keys(byName), ['ca', 'server', 'partner-a', 'alice', 'bob', 'mallory', 'other-ca', 'stranger']);
  for (const c of Object.values(byName) as Array<Record<string, string>>) {
    const cert = new X509Certificate(readFileSync(c.file));
    assert.equal(c.fingerprint, `sha256:${cert.fingerprint256.replaceAll(':', '').toLowerCase()}`, c.name);
    assert.equal(statSync(c.key_file).mode & 0o777, 0o600, c.key_file);
  }
  assert.deepEqual(
    r.envelope.certificates.map((c: { role: string }) => c.role),
    ['ca', 'server', 'client', 'client', 'client', 'client', 'untrusted_ca', 'untrusted_client'],
  );
  assert.deepEqual(byName.server.hosts, ['gw.example.com']);
  assert.ok(!r.stdout.includes('PRIVATE KEY'), 'no private key in the JSON');
  assert.equal(r.stderr, '');

  const refused = json(['certs', dir]);
  assert.equal(refused.code, 2);
  assert.equal(refused.envelope.ok, false);
  assert.equal(refused.envelope.errors[0].code, 'exists');
  assert.match(refused.envelope.errors[0].message, /refusing to overwrite 16 existing file\(s\) .*pass --force/);
  assert.equal(refused.envelope.existing.length, 16);
});

test('approve --format json: approved, already active, no such key; a config that does not compile has the diagnostics of check', async () => {
  const pki = await demoPki(t.dir);
  const config = writePortalConfig(t.dir, 'http://127.0.0.1:9', pki);
  const bundle = join(t.dir, 'bundle.json');
  const pending = async (keyId: string) => {
    const client = await freshClient(pki, t.dir, keyId);
    const text = renderKeyFile({
      keyId,
      owner: 'dana',
      policy: 'profile-reviewed',
      entryName: 'Profile API (reviewed)',
      developer: 'dana@example.com',
      certificatePem: client.certPem,
      requireApproval: true,
      requestedAt: new Date(),
    });
    writeFileSync(join(config, 'keys', 'portal', `${keyId}.yaml`), text);
    return text;
  };
  mkdirSync(join(config, 'keys', 'portal'), { recursive: true });
  await pending('portal-0000000a');

  const ok = json(['approve', 'portal-0000000a', '--config', config, '-o', bundle]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.envelope.ok, true);
  assert.equal(ok.envelope.key_id, 'portal-0000000a');
  assert.equal(ok.envelope.outcome, 'approved');
  assert.equal(ok.envelope.out, bundle);
  assert.equal(ok.envelope.bundle_written, true);
  assert.ok(existsSync(bundle));
  assert.match(readFileSync(join(config, 'keys', 'portal', 'portal-0000000a.yaml'), 'utf8'), /^is_inactive: false$/m);
  const again = json(['approve', 'portal-0000000a', '--config', config]);
  assert.equal(again.code, 0);
  assert.equal(again.envelope.outcome, 'already_active');
  assert.equal(again.envelope.bundle_written, false);

  const missing = json(['approve', 'portal-0000000f', '--config', config]);
  assert.equal(missing.code, 1);
  assert.equal(missing.envelope.outcome, 'no_such_key');
  assert.equal(missing.envelope.errors[0].code, 'no_such_key');
  const badId = json(['approve', '../apis/apis', '--config', config]);
  assert.equal(badId.code, 2);
  assert.equal(badId.envelope.errors[0].code, 'usage');
  assert.equal(json(['approve', '--config', config]).envelope.errors[0].code, 'usage');

  // The config breaks (a policy naming an API that does not exist): nothing is approved.
  const waiting = await pending('portal-0000000b');
  writeFileSync(join(config, 'policies', 'broken.yaml'), 'kind: policy\nid: broken\naccess_rights:\n  nowhere: {}\n');
  // Relative paths, as an operator types them: diagnostics name files relative to the current directory.
  const broken = json(['approve', 'portal-0000000b', '--config', 'config', '-o', bundle], t.dir);
  assert.equal(broken.code, 1);
  assert.equal(broken.envelope.ok, false);
  assert.equal(broken.envelope.outcome, 'config_errors');
  assert.equal(broken.envelope.bundle_written, false);
  assert.equal(readFileSync(join(config, 'keys', 'portal', 'portal-0000000b.yaml'), 'utf8'), waiting, 'the key file is unchanged');
  const check = json(['check', 'config'], t.dir);
  assert.equal(check.code, 1);
  assert.ok(
    broken.envelope.errors.length > 0 && broken.envelope.errors.every((e: { code: string }) => /^E_/.test(e.code)),
    JSON.stringify(broken.envelope.errors),
  );
  assert.deepEqual(broken.envelope.errors, check.envelope.errors, 'the errors check reports, in the same shape');
  assert.deepEqual(broken.envelope.diagnostics, check.envelope.diagnostics, 'the diagnostics check reports');
  assert.equal(broken.envelope.errors[0].file, 'config/policies/broken.yaml');

  const github = mtlsgate(['approve', 'portal-0000000b', '--config', 'config', '--format', 'github'], { cwd: t.dir });
  assert.equal(github.code, 1);
  assert.match(github.stdout, /^::error file=config\/policies\/broken\.yaml,line=\d+,col=\d+,title=E_/m);

  // A config naming a pki/ directory beside it (docs/quickstart.md): approve takes --allow-outside as check and compile do.
  rmSync(join(config, 'policies', 'broken.yaml'));
  writeFileSync(
    join(config, 'apis', 'orders.yaml'),
    'kind: api\nid: orders\nuse_keyless: true\nuse_mutual_tls_auth: true\nclient_certificates: [../../certs/ca.pem]\nproxy: { listen_path: /orders/, target_url: http://127.0.0.1:9 }\n',
  );
  const confined = json(['approve', 'portal-0000000b', '--config', 'config'], t.dir);
  assert.equal(confined.envelope.errors[0].code, 'E_PATH_OUTSIDE', JSON.stringify(confined.envelope.errors));
  const allowed = json(['approve', 'portal-0000000b', '--config', 'config', '--allow-outside', 'certs'], t.dir);
  assert.equal(allowed.envelope.outcome, 'approved', JSON.stringify(allowed.envelope));
});

test('completion offers --format and its values for keygen, certs and approve', () => {
  const script = mtlsgate(['completion', 'bash']).stdout;
  for (const cmd of ['keygen', 'certs', 'approve']) {
    const line = ['mtlsgate', cmd, '--format', ''];
    const r = spawnSync(
      'bash',
      ['-c', `eval "$(cat)"; COMP_WORDS=(${line.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=3; _mtlsgate; printf '%s\\n' "\${COMPREPLY[@]}"`],
      {
        input: script,
        encoding: 'utf8',
      },
    );
    assert.deepEqual(r.stdout.trim().split('\n'), ['text', 'json', 'github'], cmd);
  }
  assert.match(mtlsgate(['completion', 'zsh']).stdout, /approve:--format\) compadd -- text json github/);
});

test('--json is --format json on every command that prints a result (never an unknown flag); completion offers explain and who their formats', async () => {
  mkdirSync(join(t.dir, 'alias', 'config'), { recursive: true });
  const cwd = join(t.dir, 'alias');
  /** One run per command: a result, or a problem that is not about the flags. */
  const runs: Record<string, string[]> = {
    check: ['check', 'missing-dir'],
    compile: ['compile', 'missing-dir', '-o', 'bundle.json'],
    diff: ['diff', 'old.json', 'new.json'],
    fingerprint: ['fingerprint', 'missing.pem'],
    import: ['import', 'tyk', 'missing.json', '-o', 'imported'],
    test: ['test', 'missing-dir'],
    keygen: ['keygen', 'aliased'],
    certs: ['certs', 'certs'],
    approve: ['approve', 'portal-0000000f', '--config', 'config'],
    token: ['token'],
    version: ['version'],
    explain: ['explain', '--bundle', 'missing.json', '/x'],
    who: ['who', '--bundle', 'missing.json', 'api'],
  };
  const names = [...mtlsgate(['help']).stdout.matchAll(/^ {2}([a-z]+) {2,}/gm)].map((m) => m[1]!).filter((n) => !NO_RESULT.includes(n));
  assert.deepEqual(
    names.filter((n) => runs[n] === undefined),
    [],
    'a command with a result and no --json run here',
  );
  // One run per command, each writing only its own files: four at a time, checked in order.
  const results = await sideBySide(names, 4, (name) => mtlsgateAsync([...runs[name]!, '--json'], { cwd }));
  for (const [i, name] of names.entries()) {
    const r = results[i]!;
    const envelope = JSON.parse(r.stdout);
    assert.equal(envelope.command, name, r.stdout);
    assert.deepEqual(
      envelope.errors.filter((e: { code: string }) => e.code === 'usage'),
      [],
      `${name} --json: ${r.stdout}`,
    );
  }
  const script = mtlsgate(['completion', 'bash']).stdout;
  const complete = (cmd: string) =>
    spawnSync('bash', ['-c', `eval "$(cat)"; COMP_WORDS=(mtlsgate ${cmd} --format ''); COMP_CWORD=3; _mtlsgate; printf '%s\\n' "\${COMPREPLY[@]}"`], {
      input: script,
      encoding: 'utf8',
    }).stdout.trim();
  assert.equal(complete('explain'), 'text\njson\ngithub');
  assert.equal(complete('who'), 'text\njson\ngithub\ncsv');
});
