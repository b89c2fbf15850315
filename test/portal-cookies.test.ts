// The portal's CSRF cookie behind https (--public-url https://...): Secure and __Host-, so
// that nobody on the network can plant one. Without them a network attacker answers any
// plain-http request of the victim's browser for the portal's host with a Set-Cookie of a
// CSRF value whose form token they fetched themselves (GET / with that cookie shows it), and
// the double-submit check then accepts their forged pair (the classic double-submit weakness,
// OWASP CSRF cheat sheet).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createPortal, type Portal } from '../portal/server.ts';
import { compilerFor } from '../portal/compile.ts';
import { syncBundle } from '../portal/issue-key.ts';
import { tempDir } from './helpers/ops-fixtures.ts';
import { demoPki } from './helpers/serve-fixtures.ts';
import { writePortalConfig } from './helpers/portal-fixtures.ts';

const t = tempDir('portal-cookies');
let portal: Portal;
let base: string;

before(async () => {
  const pki = await demoPki(t.dir);
  const config = writePortalConfig(t.dir, 'http://127.0.0.1:9', pki);
  const bundle = join(t.dir, 'bundle.json');
  const compile = compilerFor({ live: true });
  await syncBundle(config, bundle, compile);
  // Served over https by a TLS-terminating proxy in front: the public URL says so.
  portal = createPortal({
    configDir: config,
    bundlePath: bundle,
    gatewayUrl: 'https://gw.example.test:8443',
    compile,
    publicUrl: 'https://portal.example.test',
  });
  await new Promise<void>((r) => portal.server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(portal.server.address() as AddressInfo).port}`;
});

after(async () => {
  await new Promise<void>((r) => (portal.server.close(() => r()), portal.server.closeAllConnections()));
  t.cleanup();
});

test('behind https the CSRF cookie is Secure and __Host-; a planted plain cookie is not a CSRF cookie', async () => {
  const res = await fetch(`${base}/`);
  await res.text();
  const setCookie = res.headers.get('set-cookie') ?? '';
  assert.match(setCookie, /^__Host-mtlsgate_portal_csrf=/);
  assert.match(setCookie, /; Secure(;|$)/);
  assert.match(setCookie, /; HttpOnly/);
  assert.match(setCookie, /; Path=\//);

  // The attacker's pair: a cookie value of their choosing and the token the portal shows for it.
  const planted = 'mtlsgate_portal_csrf=AttackerChosenValue0123456789';
  const page = await (await fetch(`${base}/`, { headers: { cookie: planted } })).text();
  const token = /name="csrf" value="([^"]+)"/.exec(page)?.[1] ?? '';
  const forged = await fetch(`${base}/requests`, {
    method: 'POST',
    headers: { cookie: planted, accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ csrf: token, policy: 'profile-self-serve', developer: 'victim@example.com', certificate: 'x' }).toString(),
  });
  // Before: 422 (the CSRF check passed; only the certificate was refused).
  assert.equal(forged.status, 403);
});
