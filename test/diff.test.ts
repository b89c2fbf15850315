// bundle/diff.ts: who gains or loses access between two bundles.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { diffBundles, type AccessGrant } from '../bundle/diff.ts';
import { compileDir } from './helpers/compile-and-load.ts';
import { writeDemoPki } from '../cli/pki.ts';
import { loadBundle } from '../bundle/read.ts';
import type { BundleContent } from '../bundle/types.ts';
import { apiWithDefaults, keyWithDefaults } from './helpers/bundle-builder.ts';

const FP = {
  partner: 'a'.repeat(64),
  bob: 'b'.repeat(64),
  alice: 'c'.repeat(64),
  ca: 'd'.repeat(64),
  alice2: 'e'.repeat(64),
};

const api = apiWithDefaults;
const key = keyWithDefaults;

/** Hand-built content shaped like the examples: static mTLS, static + token, dynamic mTLS. */
function baseContent(): BundleContent {
  const apis = {
    reports: api('reports', { use_keyless: true, use_mutual_tls_auth: true, client_certificates: [FP.partner] }),
    logistics: api('logistics', { use_mutual_tls_auth: true, client_certificates: [FP.partner, FP.bob].sort() }),
    profile: api('profile', { use_certificate: true }),
  };
  const keys = {
    alice: key('alice', { certificates: [FP.alice], access_rights: { profile: { allowed_urls: null } } }),
    bob: key('bob', {
      certificates: [FP.bob],
      token_sha256: '1'.repeat(64),
      access_rights: { logistics: { allowed_urls: null }, profile: { allowed_urls: null } },
    }),
    carol: key('carol', { token_sha256: '2'.repeat(64), access_rights: { logistics: { allowed_urls: [{ url: '^/shipments', methods: ['GET'] }] } } }),
  };
  return {
    apis,
    keys,
    cas: {},
    not_after: {},
    revocation: { crl_urls: [], crls: {}, denied: [] },
    index: {
      matches: {},
      certs: {
        [FP.partner]: { apis: ['logistics', 'reports'], key: null },
        [FP.bob]: { apis: ['logistics'], key: 'bob' },
        [FP.alice]: { apis: [], key: 'alice' },
      },
      tokens: { ['1'.repeat(64)]: 'bob', ['2'.repeat(64)]: 'carol' },
      routes: { '*': { '/reports/': 'reports', '/logistics/': 'logistics', '/profile/': 'profile' } },
    },
  };
}

const clone = (c: BundleContent): BundleContent => structuredClone(c);

test('identical contents: no changes', () => {
  const d = diffBundles(baseContent(), baseContent());
  assert.equal(d.identical, true);
  assert.deepEqual(d.access, []);
  assert.deepEqual(d.apis, { added: [], removed: [], changed: [] });
  assert.deepEqual(d.keys, { added: [], removed: [], changed: [] });
});

test('unpinning a certificate: that certificate loses access to that API only', () => {
  const before = baseContent();
  const after = clone(before);
  after.apis.logistics.client_certificates = [FP.bob];
  const d = diffBundles(before, after);
  assert.equal(d.identical, false);
  assert.deepEqual(d.access, [{ api: 'logistics', gained: [], lost: [{ kind: 'pinned_certificate', fingerprint: FP.partner, key: null }] }]);
  assert.deepEqual(d.apis.changed, [{ id: 'logistics', fields: [{ field: 'client_certificates', old: [FP.partner, FP.bob].sort(), new: [FP.bob] }] }]);
});

test('a CA anchor added to an API is gained, with its subject', () => {
  const before = baseContent();
  const after = clone(before);
  after.cas[FP.ca] = { pem: '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n', subject: 'CN=partner CA', apis: ['reports'] };
  after.apis.reports.client_cas = [FP.ca];
  const d = diffBundles(before, after);
  assert.deepEqual(d.access, [{ api: 'reports', gained: [{ kind: 'ca_certificate', fingerprint: FP.ca, subject: 'CN=partner CA' }], lost: [] }]);
});

test('rotating a certificate-bound key: old certificate loses, new one gains dynamic-mTLS access', () => {
  const before = baseContent();
  const after = clone(before);
  after.keys.alice.certificates = [FP.alice2];
  const d = diffBundles(before, after);
  assert.deepEqual(d.access, [
    {
      api: 'profile',
      gained: [{ kind: 'key_certificate', fingerprint: FP.alice2, key: 'alice' }],
      lost: [{ kind: 'key_certificate', fingerprint: FP.alice, key: 'alice' }],
    },
  ]);
  assert.deepEqual(d.keys.changed, [{ id: 'alice', fields: [{ field: 'certificates', old: [FP.alice], new: [FP.alice2] }] }]);
});

test('a deactivated key loses every API it had, through its certificate too', () => {
  const before = baseContent();
  const after = clone(before);
  after.keys.bob.is_inactive = true;
  const d = diffBundles(before, after);
  const lost = Object.fromEntries(d.access.map((a) => [a.api, a.lost]));
  assert.deepEqual(lost.logistics, [{ kind: 'key', key: 'bob', credentials: ['certificate', 'token'] }]);
  assert.deepEqual(lost.profile, [
    { kind: 'key_certificate', fingerprint: FP.bob, key: 'bob' },
    { kind: 'key', key: 'bob', credentials: ['certificate', 'token'] },
  ] satisfies AccessGrant[]);
  assert.deepEqual(d.keys.changed, [{ id: 'bob', fields: [{ field: 'is_inactive', old: false, new: true }] }]);
});

test('APIs and keys added, removed and changed; access rights compared per API', () => {
  const before = baseContent();
  const after = clone(before);
  delete after.apis.reports;
  after.apis.billing = api('billing', {});
  after.apis.profile.target_url = 'http://127.0.0.1:9200';
  delete after.keys.alice;
  after.keys.dave = key('dave', { token_sha256: '3'.repeat(64), access_rights: { billing: { allowed_urls: null } } });
  after.keys.carol.access_rights.logistics = { allowed_urls: [{ url: '^/shipments', methods: ['GET', 'POST'] }] };
  after.keys.carol.rate = { rate: 10, per: 1 };
  const d = diffBundles(before, after);
  assert.deepEqual(d.apis.added, ['billing']);
  assert.deepEqual(d.apis.removed, ['reports']);
  assert.deepEqual(d.apis.changed, [{ id: 'profile', fields: [{ field: 'target_url', old: 'http://127.0.0.1:9101', new: 'http://127.0.0.1:9200' }] }]);
  assert.deepEqual(d.keys.added, ['dave']);
  assert.deepEqual(d.keys.removed, ['alice']);
  assert.deepEqual(d.keys.changed, [
    {
      id: 'carol',
      fields: [
        { field: 'rate', old: null, new: { rate: 10, per: 1 } },
        {
          field: 'access_rights.logistics',
          old: { allowed_urls: [{ url: '^/shipments', methods: ['GET'] }] },
          new: { allowed_urls: [{ url: '^/shipments', methods: ['GET', 'POST'] }] },
        },
      ],
    },
  ]);
  // Access: billing gained dave, reports lost partner-a's pin, profile lost alice (key and certificate).
  assert.deepEqual(
    d.access.map((a) => [a.api, a.gained.map((g) => g.kind), a.lost.map((g) => g.kind)]),
    [
      ['billing', ['key'], []],
      ['profile', [], ['key_certificate', 'key']],
      ['reports', [], ['pinned_certificate']],
    ],
  );
});

test('keyless APIs grant nothing through keys', () => {
  const before = baseContent();
  const after = clone(before);
  after.keys.carol.access_rights.reports = { allowed_urls: null };
  const d = diffBundles(before, after);
  assert.deepEqual(d.access, []);
  assert.equal(d.keys.changed[0].fields[0].field, 'access_rights.reports');
});

test('compiled examples that differ by one revoked certificate: the diff names it and its API only', async () => {
  const examples = join(import.meta.dirname, '..', 'examples');
  const dir = mkdtempSync(join(tmpdir(), 'mtlsgate-diff-'));
  try {
    cpSync(examples, dir, { recursive: true, filter: (src) => !/^(certs|keys[/\\]portal)([/\\]|$)/.test(relative(examples, src)) });
    const pki = await writeDemoPki(join(dir, 'certs'));
    const before = await compileDir(dir);
    assert.equal(before.errorCount, 0, JSON.stringify(before.diagnostics));
    const file = join(dir, 'apis', 'logistics.yaml');
    const yaml = readFileSync(file, 'utf8');
    assert.ok(yaml.includes('  - ../certs/bob.pem\n'));
    writeFileSync(file, yaml.replace('  - ../certs/bob.pem\n', ''));
    const after = await compileDir(dir);
    assert.equal(after.errorCount, 0, JSON.stringify(after.diagnostics));

    const d = diffBundles(loadBundle(before.bundle!).content, loadBundle(after.bundle!).content);
    assert.deepEqual(d.access, [
      { api: 'logistics', gained: [], lost: [{ kind: 'pinned_certificate', fingerprint: pki.clients.bob.fingerprint, key: 'bob' }] },
    ]);
    assert.deepEqual(
      d.apis.changed.map((c) => [c.id, c.fields.map((f) => f.field)]),
      [['logistics', ['client_certificates']]],
    );
    assert.deepEqual(d.keys, { added: [], removed: [], changed: [] }, 'bob keeps his rights; only his certificate lost the pin');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a certificate is named by its key from whichever bundle knows it', () => {
  // OLD pins partner-a's certificate (no key); NEW unpins it and binds it to a new key dave.
  const before = baseContent();
  const after = clone(before);
  after.apis.logistics.client_certificates = [FP.bob];
  after.keys.dave = key('dave', { certificates: [FP.partner] });
  after.index.certs[FP.partner] = { apis: ['reports'], key: 'dave' };
  const d = diffBundles(before, after);
  assert.deepEqual(d.access.find((a) => a.api === 'logistics')?.lost, [{ kind: 'pinned_certificate', fingerprint: FP.partner, key: 'dave' }]);
  // And the other way round: a new pin on a certificate whose key existed only before.
  const back = diffBundles(after, before);
  assert.deepEqual(back.access.find((a) => a.api === 'logistics')?.gained, [{ kind: 'pinned_certificate', fingerprint: FP.partner, key: 'dave' }]);
});
