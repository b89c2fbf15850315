// What a developer and an admin see of a portal key (portal/key-status.ts): the status of each
// (awaiting approval, active, approved but not live, switched off, expired) and the expiry
// shown, which is the earlier of the key's `expires` and the last certificate's notAfter.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { serializeBundle } from '../bundle/write.ts';
import { createCa, issueCert, type Issued } from '../cli/pki.ts';
import type { PortalKey } from '../portal/key-file.ts';
import { keyViewer } from '../portal/key-status.ts';
import { bundleContent } from './helpers/bundle-builder.ts';
import { tempDir } from './helpers/ops-fixtures.ts';

const t = tempDir('portal-key-status');
const NOW = Date.parse('2026-06-01T12:00:00.000Z');
const DAY = 86_400_000;
let valid: Issued;
let old: Issued;
let bundle: string;

before(async () => {
  const ca = await createCa('key status CA', { notBefore: new Date(NOW - 400 * DAY), notAfter: new Date(NOW + 400 * DAY) });
  valid = await issueCert(ca, 'valid', { notBefore: new Date(NOW - DAY), notAfter: new Date('2026-12-31T22:00:00.000Z') });
  old = await issueCert(ca, 'old', { notBefore: new Date(NOW - 30 * DAY), notAfter: new Date(NOW - DAY) });
  // The gateway's bundle: portal-on is on, portal-off is still inactive there.
  bundle = join(t.dir, 'bundle.json');
  const api = { id: 'profile', listen_path: '/profile/', target_url: 'http://127.0.0.1:9' };
  writeFileSync(
    bundle,
    serializeBundle(
      bundleContent(
        [api],
        [
          { id: 'portal-on', token_sha256: 'a'.repeat(64), access_rights: { profile: { allowed_urls: [] } } },
          { id: 'portal-off', token_sha256: 'b'.repeat(64), is_inactive: true, access_rights: { profile: { allowed_urls: [] } } },
        ],
      ),
    ),
  );
});
after(() => t.cleanup());

function portalKey(over: Partial<PortalKey>): PortalKey {
  return {
    keyId: 'portal-on',
    owner: 'dana',
    policies: ['profile-self-serve'],
    developer: 'dana@example.com',
    entryName: 'portal-on',
    requestedAt: '2026-05-01T00:00:00.000Z',
    pending: false,
    switchedOff: false,
    expires: '',
    certificate: valid.certPem,
    certificates: [valid.certPem],
    receiptSha256: '',
    ...over,
  };
}

test('status: pending, active, approved (not in the bundle yet), switched off, expired', () => {
  const view = keyViewer(bundle, NOW);
  assert.equal(view(portalKey({ pending: true })).status, 'pending');
  assert.equal(view(portalKey({})).status, 'active');
  assert.equal(view(portalKey({ keyId: 'portal-off' })).status, 'approved', 'on in the directory, inactive in the bundle');
  assert.equal(view(portalKey({ switchedOff: true })).status, 'switched_off');
  assert.equal(view(portalKey({ certificate: old.certPem, certificates: [old.certPem] })).status, 'expired', 'every certificate has expired');
  assert.equal(view(portalKey({ certificates: [old.certPem, valid.certPem] })).status, 'active', 'one certificate still valid');
  assert.equal(view(portalKey({ expires: '2026-05-31T00:00:00Z' })).status, 'expired', 'the key itself has expired');
  assert.equal(
    keyViewer(join(t.dir, 'no-bundle.json'), NOW)(portalKey({ keyId: 'portal-off' })).status,
    'active',
    'no readable bundle: the file is all there is',
  );
});

test('the expiry shown is the earlier of the key expiry and the last certificate, whatever the offset it is written with', () => {
  const view = keyViewer(bundle, NOW);
  assert.equal(view(portalKey({})).expiresAt, '2026-12-31T22:00:00.000Z');
  assert.equal(view(portalKey({ expires: '2026-09-01T00:00:00Z' })).expiresAt, '2026-09-01T00:00:00.000Z');
  // 2027-01-01T01:00:00+05:00 is 2026-12-31T20:00Z: before the certificate's 22:00Z.
  assert.equal(view(portalKey({ expires: '2027-01-01T01:00:00+05:00' })).expiresAt, '2026-12-31T20:00:00.000Z');
  assert.equal(view(portalKey({ expires: '2027-03-01T00:00:00Z' })).expiresAt, '2026-12-31T22:00:00.000Z');
  assert.equal(view(portalKey({ certificate: '', certificates: [] })).expiresAt, '', 'no certificate, no expiry');
});
