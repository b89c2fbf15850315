// A portal key's YAML through the compiler: `owner:` is a checked key field that never reaches
// the bundle; renewing turns `certificate:` into a `certificates:` list the compiler accepts
// and the bundle indexes both; removing one takes it out of the index; a key keeps one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCa, issueCert } from '../cli/pki.ts';
import { compileDir } from '../compiler/index.ts';
import { withCertificateAdded, withCertificateRemoved } from '../portal/key-certs.ts';
import { renderKeyFile } from '../portal/key-file.ts';
import { tempDir } from './helpers/ops-fixtures.ts';

const API =
  'kind: api\nid: profile\nproxy:\n  listen_path: /profile/\n  target_url: http://127.0.0.1:9\nauth:\n  use_certificate: true\n---\nkind: policy\nid: plan\naccess_rights:\n  profile: {}\n';

test('owner: checked, documented in the schema, left out of the bundle; certificates added and removed', async () => {
  const t = tempDir('portal-keyfile');
  try {
    const ca = await createCa('keyfile CA');
    const [oldCert, newCert] = await Promise.all([issueCert(ca, 'old'), issueCert(ca, 'new')]);
    mkdirSync(join(t.dir, 'keys'), { recursive: true });
    writeFileSync(join(t.dir, 'api.yaml'), API);
    const file = join(t.dir, 'keys', 'k.yaml');
    const text = renderKeyFile({
      keyId: 'portal-0a1b2c3d',
      owner: 'dana',
      policy: 'plan',
      entryName: 'Plan',
      developer: 'dana@example.com',
      certificatePem: oldCert.certPem,
      requireApproval: false,
      requestedAt: new Date(),
    });
    writeFileSync(file, text);
    const one = await compileDir(t.dir);
    assert.equal(one.errorCount, 0, JSON.stringify(one.diagnostics));
    assert.doesNotMatch(one.bundle!.toString(), /"owner"|dana/, 'owner never reaches the bundle');
    assert.equal(one.content!.index.certs[oldCert.fingerprint]?.key, 'portal-0a1b2c3d');

    const renewed = withCertificateAdded(text, newCert.certPem);
    assert.equal(typeof renewed, 'string');
    assert.match(renewed as string, /^owner: dana$/m);
    assert.match(renewed as string, /^certificates:\n {2}- \|/m);
    assert.doesNotMatch(renewed as string, /^certificate:/m);
    writeFileSync(file, renewed as string);
    const both = await compileDir(t.dir);
    assert.equal(both.errorCount, 0, JSON.stringify(both.diagnostics));
    assert.equal(both.content!.index.certs[oldCert.fingerprint]?.key, 'portal-0a1b2c3d');
    assert.equal(both.content!.index.certs[newCert.fingerprint]?.key, 'portal-0a1b2c3d');

    const removed = withCertificateRemoved(renewed as string, oldCert.fingerprint);
    writeFileSync(file, removed as string);
    const after = await compileDir(t.dir);
    assert.equal(after.errorCount, 0, JSON.stringify(after.diagnostics));
    assert.equal(after.content!.index.certs[oldCert.fingerprint], undefined);
    assert.equal(after.content!.index.certs[newCert.fingerprint]?.key, 'portal-0a1b2c3d');
    assert.deepEqual(withCertificateRemoved(removed as string, newCert.fingerprint), {
      problem: 'A key keeps at least one certificate: add the new one first, or switch the key off.',
    });
    assert.deepEqual(withCertificateRemoved(removed as string, 'ab'.repeat(32)), { problem: 'This key has no such certificate.' });
    assert.match((withCertificateAdded('kind: key\nid: x\ncertificate: ../certs/x.pem\n', newCert.certPem) as { problem: string }).problem, /by file path/);

    // owner must be a non-empty string.
    writeFileSync(file, (removed as string).replace(/^owner: dana$/m, 'owner: 5'));
    const bad = await compileDir(t.dir);
    assert.equal(bad.errorCount, 1);
    assert.match(bad.diagnostics[0]!.message, /owner/);
  } finally {
    t.cleanup();
  }
});
