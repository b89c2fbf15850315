// A signed-in portal without a session, in-process (no provider needed for these): every page
// asks to sign in (401), every form post is refused and writes nothing, the provider being down
// is a 503 page, a callback without its login cookie is refused, and the return path after
// sign-in is only ever a local path.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import type { DemoPki } from '../cli/pki.ts';
import { syncBundle } from '../portal/issue-key.ts';
import { safeReturnTo } from '../portal/oidc.ts';
import { createPortal, type Portal } from '../portal/server.ts';
import { tempDir } from './helpers/ops-fixtures.ts';
import { snapshotDir, writePortalConfig } from './helpers/portal-fixtures.ts';
import { demoPki } from './helpers/serve-fixtures.ts';

const t = tempDir('portal-signin');
let pki: DemoPki;
let config: string;
let portal: Portal;
let base: string;
let down: Server;

before(async () => {
  pki = await demoPki(t.dir);
  config = writePortalConfig(t.dir, 'http://127.0.0.1:9', pki);
  const bundle = join(t.dir, 'bundle.json');
  assert.equal((await syncBundle(config, bundle)).errorCount, 0);
  // A "provider" that answers 500 to everything, discovery included.
  down = createServer((_req, res) => res.writeHead(500).end());
  await new Promise<void>((r) => down.listen(0, '127.0.0.1', r));
  const issuer = `http://127.0.0.1:${(down.address() as AddressInfo).port}`;
  portal = createPortal({
    configDir: config,
    bundlePath: bundle,
    gatewayUrl: 'https://gw.example.test',
    oidc: { issuer, clientId: 'c', clientSecret: 's', admins: ['ada@example.com'] },
  });
  await new Promise<void>((r) => portal.server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(portal.server.address() as AddressInfo).port}`;
});

after(async () => {
  await new Promise<void>((r) => (portal.server.close(() => r()), portal.server.closeAllConnections()));
  await new Promise<void>((r) => (down.close(() => r()), down.closeAllConnections()));
  t.cleanup();
});

test('without a session every page is the sign-in page (401) and every post is refused, nothing written', async () => {
  const before = snapshotDir(config);
  for (const path of ['/', '/keys', '/keys/portal-00000000', '/admin', '/requests', '/requests/portal-00000000']) {
    const res = await fetch(base + path, { redirect: 'manual' });
    assert.equal(res.status, 401, path);
    const page = await res.text();
    assert.match(page, /<title>Sign in · mtlsgate developer portal<\/title>/, path);
    assert.match(page, new RegExp(`href="/auth/login\\?return=${encodeURIComponent(path).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"`), path);
    assert.doesNotMatch(page, /Loopback-only portal/, 'a signed-in portal does not say it has no sign-in');
  }
  for (const path of ['/requests', '/keys/portal-00000000/switch-off', '/keys/portal-00000000/renew', '/admin/keys/portal-00000000/approve']) {
    const res = await fetch(base + path, {
      method: 'POST',
      headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' },
      body: 'csrf=x&policy=profile-self-serve',
    });
    assert.equal(res.status, 401, path);
    assert.match(await res.text(), /Sign in first/);
  }
  assert.deepEqual(snapshotDir(config), before);
});

test('the provider down: sign-in answers 503 with a page; a callback without its login cookie is refused', async () => {
  const login = await fetch(`${base}/auth/login?return=/keys`, { redirect: 'manual' });
  assert.equal(login.status, 503);
  assert.match(await login.text(), /identity provider cannot be reached/);
  const callback = await fetch(`${base}/auth/callback?code=abc&state=def`, { redirect: 'manual' });
  assert.equal(callback.status, 400);
  assert.match(await callback.text(), /sign-in attempt expired or was started in another browser/);
  assert.doesNotMatch(callback.headers.get('set-cookie') ?? '', /mtlsgate_session=[^;]/, 'no session started');
});

test('the return path after sign-in is a local path, never another origin', () => {
  assert.equal(safeReturnTo('/keys/portal-1a2b3c4d?done=issued'), '/keys/portal-1a2b3c4d?done=issued');
  for (const evil of ['//evil.example/x', '/\\evil.example', 'https://evil.example/', 'javascript:alert(1)', '/a\nb', null, '']) {
    assert.equal(safeReturnTo(evil), '/', String(evil));
  }
});
