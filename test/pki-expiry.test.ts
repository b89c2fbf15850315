// Expiry monitoring: /metrics counts the config's certificates expiring within 7 and 30 days
// and the soonest notAfter, with a fixed set of series however many keys; the admin listener
// lists the N soonest-expiring certificates with the key or API that names each.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { Registry } from 'prom-client';
import { issueCert } from '../cli/pki.ts';
import { loadBundle } from '../bundle/read.ts';
import { compileDir } from './helpers/compile-and-load.ts';
import { startAdmin } from '../runtime/admin.ts';
import { GatewayMetrics } from '../runtime/metrics.ts';
import { expiryCounts, registerPkiMetrics, soonestExpiring } from '../runtime/pki-status.ts';
import { crlStore } from '../runtime/revocation.ts';
import { buildSnapshot, type Snapshot } from '../runtime/snapshot.ts';
import { closeAllUpstreams } from '../runtime/upstreams.ts';
import { api, certFiles, removeConfigs, testPki, writeConfig } from './fixtures/compiler/helpers.ts';

after(async () => {
  removeConfigs();
  await closeAllUpstreams();
});

const DAY = 86_400_000;

/** The snapshot serve would build from `dir` compiled. */
async function snapshotOf(dir: string): Promise<Snapshot> {
  const r = await compileDir(dir);
  assert.equal(r.errorCount, 0, JSON.stringify(r.diagnostics));
  return buildSnapshot(loadBundle(r.bundle!));
}

/** An admin listener answering /certificates/expiring from `snapshot`. */
function expiryAdmin(snapshot: Snapshot) {
  return startAdmin(
    '127.0.0.1',
    0,
    {
      bundle: () => ({ digest: snapshot.digest, loadedAt: new Date(), source: 'test', apis: 2, keys: 1 }),
      lastReloadError: () => null,
      expiring: (limit) => soonestExpiring(snapshot, limit, Date.now() / 1000),
      draining: () => false,
    },
    new GatewayMetrics({ processMetrics: false }),
  );
}

test('expiry metrics and the soonest-expiring list, from a compiled bundle', async () => {
  const p = await testPki();
  const inTwenty = await issueCert(p.ca, 'in-twenty', { notAfter: new Date(Date.now() + 20 * DAY) });
  const dir = writeConfig({
    ...(await certFiles()),
    'certs/in-twenty.pem': inTwenty.certPem,
    'a.yaml': api('x', 'use_keyless: true\nuse_mutual_tls_auth: true\nclient_certificates: [certs/expiring.pem, certs/ca.pem]\n'),
    'b.yaml': api('y', 'auth:\n  use_certificate: true\n', '/y/'),
    'k.yaml': 'kind: key\nid: twenty\ncertificates: [certs/in-twenty.pem, certs/alice.pem]\naccess_rights:\n  y: {}\n',
  });
  const snapshot = await snapshotOf(dir);
  const now = Date.now() / 1000;
  const counts = expiryCounts(snapshot.expiry, now);
  assert.equal(counts.within7d, 1, 'expiring.pem (5 days)');
  assert.equal(counts.within30d, 2, 'and in-twenty.pem');
  assert.equal(counts.soonest, Math.floor(p.expiring.cert.notAfter.getTime() / 1000));

  const list = soonestExpiring(snapshot, 2, now);
  assert.deepEqual(
    list.map((c) => [c.sha256, c.key, c.apis]),
    [
      [p.expiring.fingerprint, null, ['x']],
      [inTwenty.fingerprint, 'twenty', ['y']], // the key's APIs (before: [], the key named without where it reaches)
    ],
  );

  const registry = new Registry();
  registerPkiMetrics(registry, () => snapshot, crlStore);
  const text = await registry.metrics();
  assert.match(text, /mtlsgate_certificates_expiring\{within="7d"\} 1/);
  assert.match(text, /mtlsgate_certificates_expiring\{within="30d"\} 2/);
  assert.match(text, new RegExp(`mtlsgate_certificate_soonest_expiry_timestamp_seconds ${counts.soonest}`));
  assert.equal(text.match(/^mtlsgate_certificates_expiring\{/gm)?.length, 3, 'a fixed set of series, never one per key');

  const admin = await expiryAdmin(snapshot);
  try {
    const res = await fetch(`http://127.0.0.1:${admin.address.port}/certificates/expiring?limit=1`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as { certificates: { sha256: string; apis: string[] }[] };
    assert.deepEqual(
      body.certificates.map((c) => c.sha256),
      [p.expiring.fingerprint],
    );
  } finally {
    await admin.close();
  }
});

test('the expiry list names the keys a CA identifies by certificate_match, and their APIs; a limit that is no count is 400', async () => {
  const p = await testPki();
  const dir = writeConfig({
    ...(await certFiles()),
    'a.yaml': api('x', 'use_keyless: true\nuse_mutual_tls_auth: true\nclient_certificates: [certs/ca.pem]\n'),
    'b.yaml': api('y', 'auth:\n  use_certificate: true\n', '/y/'),
    'k.yaml': 'kind: key\nid: team\ncertificate_match:\n  issuer: certs/ca.pem\n  subject_cn: team\naccess_rights:\n  y: {}\n',
  });
  const snapshot = await snapshotOf(dir);
  const ca = soonestExpiring(snapshot, 10_000, Date.now() / 1000, true).find((c) => c.sha256 === p.ca.fingerprint);
  assert.deepEqual(ca && { key: ca.key, keys: ca.keys, keys_total: ca.keys_total, apis: ca.apis }, {
    key: 'team',
    keys: ['team'],
    keys_total: 1,
    apis: ['x', 'y'],
  });

  const admin = await expiryAdmin(snapshot);
  try {
    const base = `http://127.0.0.1:${admin.address.port}/certificates/expiring`;
    for (const bad of ['abc', '0', '-5', '2.5', '']) {
      const res = await fetch(`${base}?limit=${bad}`);
      assert.equal(res.status, 400, bad);
      assert.match(
        ((await res.json()) as { error: string }).error,
        new RegExp(`^limit must be a whole number from 1 to 10000 \\(default 20\\), not "${bad.replace('.', '\\.')}"$`),
      );
    }
    assert.equal((await fetch(`${base}?limit=50000`)).status, 200, 'over the maximum: capped, as documented');
    const listed = (await (await fetch(base)).json()) as { certificates: { sha256: string; keys: string[] }[] };
    assert.deepEqual(listed.certificates.find((c) => c.sha256 === p.ca.fingerprint)?.keys, ['team']);
  } finally {
    await admin.close();
  }
});
