// Approval flow end to end: a key requested for a require_approval plan is refused by the
// gateway (403 "Key is inactive, please renew") until `mtlsgate approve`, then accepted.
// Portal in-process, gateway and approve as the built CLI (the gateway reloads by file watch).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DemoPki } from '../cli/pki.ts';
import { tempDir, waitFor } from './helpers/ops-fixtures.ts';
import { CLI, run } from './helpers/serve-fixtures.ts';
import { curlUntil, freshClient, openForm, submitJson } from './helpers/portal-fixtures.ts';
import { approveCli as approve, startPortalStack, type PortalStack } from './helpers/portal-stack.ts';

const t = tempDir('portal-approval');
let stack: PortalStack | undefined;
let pki: DemoPki;
let config: string;
let bundle: string;
let base: string;
let gatewayBase: string;

before(async () => {
  stack = await startPortalStack(t.dir);
  ({ pki, config, bundle, base, gatewayBase } = stack);
});

after(async () => {
  await stack?.close();
  t.cleanup();
});

test('a require_approval key is refused with 403 key.inactive until `mtlsgate approve`, then accepted', async () => {
  const dev = await freshClient(pki, t.dir, 'frank');
  const r = await submitJson(base, await openForm(base), { policy: 'profile-reviewed', developer: 'frank@example.com', certificate: dev.certPem }, dev.keyFile);
  assert.equal(r.status, 201, JSON.stringify(r.body));
  assert.equal(r.body.status, 'pending_approval');
  const keyId = r.body.key_id as string;
  const keyFile = join(config, 'keys', 'portal', `${keyId}.yaml`);
  assert.match(readFileSync(keyFile, 'utf8'), /^is_inactive: true$/m);

  const inactive = await curlUntil('403 key.inactive from the gateway', `${gatewayBase}/profile/me`, pki, dev, (res) => res.code === 'key.inactive', 15_000);
  assert.equal(inactive.status, 403);
  assert.equal(JSON.parse(inactive.body).error, 'Key is inactive, please renew');

  // The portal shows it as pending on its status page (reached with the receipt).
  const statusUrl = `${base}/requests?receipt=${encodeURIComponent(r.body.receipt as string)}`;
  assert.match(await (await fetch(statusUrl)).text(), /Waiting for approval[\s\S]*Awaiting approval/);

  const approved = await approve(keyId, '--config', config, '--bundle', bundle);
  assert.equal(approved.code, 0, approved.stderr);
  assert.match(approved.stdout, new RegExp(`approved ${keyId}: it is active; bundle written to`));
  const text = readFileSync(keyFile, 'utf8');
  assert.match(text, /^is_inactive: false$/m);
  assert.match(text, /# portal-developer: "frank@example.com"/, 'comments are kept');
  assert.match(text, /# portal-approved: \d{4}-/);

  const ok = await curlUntil('200 after approval', `${gatewayBase}/profile/me`, pki, dev, (res) => res.status === 200, 15_000);
  assert.equal(JSON.parse(ok.body).path, '/me');
  assert.match(await (await fetch(statusUrl)).text(), /Your key is active/);

  // Approving again is harmless.
  const again = await approve(keyId, '--config', config);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /was already active/);
});

test('approve: exit 2 for a bad id or missing flags, 1 for an unknown key or a config that does not compile', async () => {
  const bad = await approve('../../etc/passwd', '--config', config);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /not a portal key id/);
  const noConfig = await approve('portal-00000000');
  assert.equal(noConfig.code, 2);
  assert.match(noConfig.stderr, /--config DIR is required/);
  const unknown = await approve('portal-00000000', '--config', config);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /no portal key portal-00000000/);

  // A pending key in a directory that no longer compiles: refused, the file left as it was.
  const dev = await freshClient(pki, t.dir, 'gina');
  const r = await submitJson(base, await openForm(base), { policy: 'profile-reviewed', developer: 'gina', certificate: dev.certPem }, dev.keyFile);
  const statusUrl = `${base}/requests?receipt=${encodeURIComponent(r.body.receipt as string)}`;
  const keyFile = join(config, 'keys', 'portal', `${r.body.key_id as string}.yaml`);
  const before = readFileSync(keyFile);
  // The pending key's own comment shows the one flag scheme: -o OUT, not the old --bundle OUT.
  assert.match(before.toString(), new RegExp(`# Waits for approval: mtlsgate approve ${r.body.key_id as string} --config DIR -o OUT\n`));
  const bundleBefore = readFileSync(bundle);
  const broken = join(config, 'apis', 'broken.yaml');
  writeFileSync(broken, 'kind: api\nid: broken\n');
  try {
    const refused = await approve(r.body.key_id as string, '--config', config, '--bundle', bundle);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /was not approved: the configuration does not compile/);
    assert.match(refused.stderr, /broken\.yaml/);
    assert.ok(readFileSync(keyFile).equals(before));
    assert.ok(readFileSync(bundle).equals(bundleBefore));
  } finally {
    rmSync(broken);
  }

  // Approved without --bundle: on in the config, not in the gateway's bundle yet; the portal says so.
  const keyId = r.body.key_id as string;
  const noBundle = await approve(keyId, '--config', config);
  assert.equal(noBundle.code, 0, noBundle.stderr);
  assert.match(noBundle.stdout, /pass -o OUT/);
  assert.match(await (await fetch(statusUrl)).text(), /Approved, not live yet/);
  assert.equal((await approve(keyId, '--config', config, '--bundle', bundle)).code, 0);
  const page = await (await fetch(statusUrl)).text();
  assert.match(page, /Your key is active/);
  assert.doesNotMatch(page, /not live yet/);
});

test('portal: exit 2 with the usage for missing or bad flags', async () => {
  const portal = (...args: string[]) => run(process.execPath, [CLI, 'portal', ...args]);
  const none = await portal();
  assert.equal(none.code, 2);
  assert.match(none.stderr, /--config DIR and -o OUT \(the bundle\) are both required/);
  assert.match(none.stderr, /usage: mtlsgate portal/);
  const http = await portal('--config', config, '--bundle', bundle, '--gateway-url', 'http://gw.example');
  assert.equal(http.code, 2);
  assert.match(http.stderr, /--gateway-url must be an https:\/\/ URL/);
  const missing = await portal('--config', join(t.dir, 'nope'), '--bundle', bundle);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /is not a directory/);
  // Without sign-in the portal stays on loopback.
  const open = await portal('--config', config, '--bundle', bundle, '--listen', '0.0.0.0:0');
  assert.equal(open.code, 2);
  assert.match(open.stderr, /not a loopback address: without sign-in/);
  const noSecret = await portal('--config', config, '--bundle', bundle, '--oidc-issuer', 'https://login.example.com');
  assert.equal(noSecret.code, 2);
  assert.match(noSecret.stderr, /--oidc-issuer needs --oidc-client-id ID and --oidc-client-secret-file FILE/);
  const secret = join(t.dir, 'secret');
  writeFileSync(secret, 's3cret\n');
  const plainHttp = await portal(
    '--config',
    config,
    '--bundle',
    bundle,
    '--oidc-issuer',
    'http://login.example.com',
    '--oidc-client-id',
    'x',
    '--oidc-client-secret-file',
    secret,
  );
  assert.equal(plainHttp.code, 2);
  assert.match(plainHttp.stderr, /--oidc-issuer must be an https:\/\/ URL/);
  // With sign-in on every address the default public URL (http://0.0.0.0:PORT) is no callback a
  // browser can reach: --public-url is required, and plain http beyond loopback is warned about.
  const oidcFlags = ['--oidc-issuer', 'https://login.example.com', '--oidc-client-id', 'x', '--oidc-client-secret-file', secret];
  const wildcard = await portal('--config', config, '-o', bundle, ...oidcFlags, '--listen', '0.0.0.0:0');
  assert.equal(wildcard.code, 2);
  assert.match(wildcard.stderr, /--listen 0\.0\.0\.0 listens on every address: give --public-url URL/);
  const overHttp = spawn(process.execPath, [
    CLI,
    'portal',
    '--config',
    config,
    '-o',
    bundle,
    ...oidcFlags,
    '--listen',
    '0.0.0.0:0',
    '--public-url',
    'http://portal.example.com',
  ]);
  let err = '';
  overHttp.stderr.on('data', (d) => {
    err += d;
  });
  try {
    await waitFor(() => /sign-in over plain http beyond this machine: session cookies are not Secure/.test(err), 30_000);
  } finally {
    overHttp.kill('SIGTERM');
  }
  const orphan = await portal('--config', config, '--bundle', bundle, '--admins', 'a@example.com');
  assert.equal(orphan.code, 2);
  assert.match(orphan.stderr, /need --oidc-issuer/);
});
