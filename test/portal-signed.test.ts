// The portal and `approve` under signed bundles (issue 10 item 8): a gateway started with
// --bundle-public-key takes the keys they add only when they sign what they write
// (`portal --sign` / `approve --sign`); an unsigned rewrite is refused and the old bundle
// serves on. Portal in-process, gateway and approve as the built CLI, real curl.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateSigningKeys, readPrivateKey } from '../bundle/sign.ts';
import type { DemoPki } from '../cli/pki.ts';
import { compilerFor } from '../portal/compile.ts';
import { tempDir, waitFor } from './helpers/ops-fixtures.ts';
import { curlUntil, curlWith, freshClient, openForm, submitJson } from './helpers/portal-fixtures.ts';
import { approveCli as approve, startPortalStack, type PortalStack } from './helpers/portal-stack.ts';
import { CLI, run } from './helpers/serve-fixtures.ts';

const t = tempDir('portal-signed');
let stack: PortalStack | undefined;
let pki: DemoPki;
let config: string;
let bundle: string;
let signingKeyFile: string;
let base: string;
let gateway: PortalStack['gateway'];
let gatewayBase: string;

before(async () => {
  const keys = generateSigningKeys();
  signingKeyFile = join(t.dir, 'bundle-signing.key');
  writeFileSync(signingKeyFile, keys.privatePem, { mode: 0o600 });
  writeFileSync(join(t.dir, 'bundle-signing.pub'), keys.publicPem);
  stack = await startPortalStack(t.dir, {
    compile: compilerFor({ signingKey: readPrivateKey(keys.privatePem) }),
    serveArgs: ['--bundle-public-key', join(t.dir, 'bundle-signing.pub')],
  });
  ({ pki, config, bundle, base, gateway, gatewayBase } = stack);
});

after(async () => {
  await stack?.close();
  t.cleanup();
});

const V2_SIGNATURE = /"signature":"ed25519:[0-9a-f]{16}:\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z:/;

test('portal --sign: a self-serve key reaches a gateway that requires signed bundles', async () => {
  const dev = await freshClient(pki, t.dir, 'grace');
  const r = await submitJson(
    base,
    await openForm(base),
    { policy: 'profile-self-serve', developer: 'grace@example.com', certificate: dev.certPem },
    dev.keyFile,
  );
  assert.equal(r.status, 201, JSON.stringify(r.body));
  const ok = await curlUntil('200 for the new key through the gateway', `${gatewayBase}/profile/me`, pki, dev, (res) => res.status === 200, 20_000);
  assert.equal(ok.status, 200);
  assert.match(readFileSync(bundle, 'latin1').slice(0, 400), V2_SIGNATURE, 'the portal signs v2 (with the signing time: docs/security.md section 30)');
});

test('approve without --sign writes an unsigned bundle: refused, the old one serves on; approve --sign turns the key on', async () => {
  const dev = await freshClient(pki, t.dir, 'heidi');
  const r = await submitJson(base, await openForm(base), { policy: 'profile-reviewed', developer: 'heidi@example.com', certificate: dev.certPem }, dev.keyFile);
  assert.equal(r.status, 201, JSON.stringify(r.body));
  const keyId = r.body.key_id as string;
  const inactive = await curlUntil(
    '403 key.inactive (the pending key is in the signed bundle)',
    `${gatewayBase}/profile/me`,
    pki,
    dev,
    (res) => res.code === 'key.inactive',
    20_000,
  );
  assert.equal(inactive.status, 403);

  const unsigned = await approve(keyId, '--config', config, '-o', bundle);
  assert.equal(unsigned.code, 0, unsigned.stderr);
  await waitFor(
    'the gateway refusing the unsigned bundle',
    () => gateway.lines().some((l) => typeof l.msg === 'string' && /not signed/.test(`${l.msg} ${l.error ?? ''} ${l.reason ?? ''}`)) || null,
    20_000,
    50,
  );
  const still = await curlWith(`${gatewayBase}/profile/me`, pki, dev.certFile, dev.keyFile);
  assert.equal(still.code, 'key.inactive', 'the old (signed) bundle serves on');

  const signed = await approve(keyId, '--config', config, '-o', bundle, '--sign', signingKeyFile);
  assert.equal(signed.code, 0, signed.stderr);
  const ok = await curlUntil('200 once the signed bundle is served', `${gatewayBase}/profile/me`, pki, dev, (res) => res.status === 200, 20_000);
  assert.equal(ok.status, 200);
  assert.match(readFileSync(bundle, 'latin1').slice(0, 400), V2_SIGNATURE, 'approve signs v2');
});

test('portal/approve --sign with a file that is not a private key: exit 2 naming the file', async () => {
  const bad = join(t.dir, 'not-a-key.pem');
  writeFileSync(bad, 'hello\n');
  const a = await approve('portal-00000000', '--config', config, '--sign', bad);
  assert.equal(a.code, 2);
  assert.match(a.stderr, /--sign .*not-a-key\.pem: the signing key is not a PEM private key/);
  const p = await run(process.execPath, [CLI, 'portal', '--config', config, '-o', bundle, '--sign', join(t.dir, 'missing.key')]);
  assert.equal(p.code, 2);
  assert.match(p.stderr, /--sign .*missing\.key: ENOENT/);
});
