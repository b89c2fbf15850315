// docs/quickstart.md, run as a reader would: its openssl commands (with `mtlsgate` on PATH as
// the install step links it), its YAML written to the files its comments name, `check
// --strict` and `compile` as in its CI step, then `serve` with the issued server certificate
// and curl with the issued client certificate. If the page drifts from the code, this fails.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CLI, ensureBuilt, mtlsgate, ROOT } from './helpers/cli.ts';
import { tempDir } from './helpers/ops-fixtures.ts';
import { spawnServe } from './helpers/serve-fixtures.ts';

const t = tempDir('quickstart');
after(() => t.cleanup());
const page = readFileSync(join(ROOT, 'docs', 'quickstart.md'), 'utf8');

/** The fenced block of `lang` that contains `marker`. */
function block(lang: string, marker: string): string {
  const blocks = [...page.matchAll(new RegExp(`\`\`\`${lang}\\n([\\s\\S]*?)\`\`\``, 'g'))].map((m) => m[1]);
  const found = blocks.find((b) => b.includes(marker));
  assert.ok(found, `a ${lang} block with ${marker}`);
  return found;
}

test('the quickstart: openssl certificates, the YAML, check --strict, compile, serve, curl', async () => {
  ensureBuilt();
  const bin = join(t.dir, 'bin');
  mkdirSync(bin);
  symlinkSync(CLI, join(bin, 'mtlsgate'));
  const sh = block('sh', 'openssl req -x509');
  const pkiStep = sh.slice(sh.indexOf('mkdir -p pki'));
  const r = spawnSync('bash', ['-euo', 'pipefail', '-c', pkiStep], {
    cwd: t.dir,
    encoding: 'utf8',
    env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^sha256:[0-9a-f]{64} {2}CN=partner-a, O=Partner A$/m, 'mtlsgate fingerprint ran from PATH');

  for (const doc of block('yaml', 'kind: api').split(/^---\n/m)) {
    const file = /^# (config\/\S+\.yaml)/.exec(doc)?.[1];
    assert.ok(file, doc);
    mkdirSync(dirname(join(t.dir, file)), { recursive: true });
    writeFileSync(join(t.dir, file), doc);
  }
  const check = mtlsgate(['check', 'config', '--strict', '--format', 'github', '--allow-outside', 'pki'], { cwd: t.dir });
  assert.equal(check.code, 0, check.stdout + check.stderr);
  const compiled = mtlsgate(['compile', 'config', '-o', 'bundle.json', '--allow-outside', 'pki'], { cwd: t.dir });
  assert.equal(compiled.code, 0, compiled.stderr);
  assert.match(compiled.stderr, /2 APIs, 1 key, 2 certificates/);

  const s = spawnServe([
    '--bundle',
    join(t.dir, 'bundle.json'),
    '--tls-cert',
    join(t.dir, 'pki/server.pem'),
    '--tls-key',
    join(t.dir, 'pki/server-key.pem'),
    '--listen',
    '127.0.0.1:0',
    '--admin',
    '127.0.0.1:0',
  ]);
  try {
    const up = await s.serving();
    assert.deepEqual(
      s.lines().filter((l) => l.level === 'warn' || l.level === 40),
      [],
      'the quickstart server certificate draws no warning',
    );
    const port = String(up.listen).split(':').pop();
    const pki = (f: string) => join(t.dir, 'pki', f);
    const status = (path: string, client: string | null) => {
      const args = ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--cacert', pki('ca.pem'), '--max-time', '20'];
      if (client) args.push('--cert', pki(`${client}.pem`), '--key', pki(`${client}-key.pem`));
      const c = spawnSync('curl', [...args, `https://localhost:${port}${path}`], { encoding: 'utf8' });
      return c.stdout;
    };
    // Admitted by the gateway (the certificate identifies key partner-a); the upstream host of
    // the example does not exist here, so the answer is the gateway's 502, not 401/403.
    assert.equal(status('/profile/me', 'partner-a'), '502');
    assert.equal(status('/profile/me', null), '401');
    assert.equal(status('/orders/1', 'partner-a'), '502', 'the CA admits the certificate it issued');
  } finally {
    s.kill();
  }
});
