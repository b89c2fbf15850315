// Smoke tests of the bench harness pieces that must be right for the numbers to mean anything:
// the generated compile config (real, CA-signed, distinct certificates), synthetic bundle keys
// (still a valid bundle) and the /proc readers. No load is generated here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateCompileConfig } from '../bench/gen-config.ts';
import { withSyntheticKeys } from '../bench/bundles.ts';
import { cpuSeconds, memKiB, processTree } from '../bench/lib/proc.ts';
import { loadBundle, serializeBundle, type BundleContent } from '../runtime/bundle.ts';

test('gen-config writes APIs, policies and keys whose certificates are distinct and signed by its CA', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mtlsgate-bench-gen-'));
  try {
    const r = await generateCompileConfig(dir, { apis: 20, keys: 1500 });
    assert.ok(r.generatedInS > 0);
    const ca = new X509Certificate(readFileSync(join(dir, 'certs/ca.pem')));
    const shards = readdirSync(join(dir, 'certs')).filter((d) => d !== 'ca.pem').sort();
    assert.deepEqual(shards, ['000', '001']);
    const fingerprints = new Set<string>();
    for (const shard of shards) {
      for (const f of readdirSync(join(dir, 'certs', shard))) {
        const cert = new X509Certificate(readFileSync(join(dir, 'certs', shard, f)));
        assert.ok(cert.verify(ca.publicKey), `${f} is signed by the bench CA`);
        assert.equal(cert.subject.split('\n').find((l) => l.startsWith('CN='))?.slice(3), f.replace('.pem', ''));
        assert.equal(cert.ca, false);
        fingerprints.add(cert.fingerprint256);
      }
    }
    assert.equal(fingerprints.size, 1500);
    const keysYaml = readFileSync(join(dir, 'keys/keys-001.yaml'), 'utf8');
    assert.equal(keysYaml.match(/^kind: key$/gm)?.length, 500);
    assert.match(keysYaml, /^certificate: \.\.\/certs\/001\/key-001499\.pem$/m);
    assert.equal(readFileSync(join(dir, 'apis/apis-00.yaml'), 'utf8').match(/^kind: api$/gm)?.length, 20);
    assert.match(readFileSync(join(dir, 'apis/apis-00.yaml'), 'utf8'), /client_certificates:\n {2}- sha256:[0-9a-f]{64}/);
    // Cached: the same parameters are not generated twice.
    assert.equal((await generateCompileConfig(dir, { apis: 20, keys: 1500 })).generatedInS, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('synthetic keys copy a compiled key and keep the bundle valid', () => {
  const fp = 'a'.repeat(64);
  const content: BundleContent = {
    apis: {},
    keys: { alice: { id: 'alice', certificate: fp, token_sha256: null, policies: ['p'], access_rights: {}, rate: null, quota: null, expires: null, is_inactive: false } },
    cas: {},
    index: { certs: { [fp]: { apis: [], key: 'alice' } }, tokens: {}, routes: {} },
  };
  const grown = loadBundle(serializeBundle(withSyntheticKeys(content, 'alice', 1000))).content;
  assert.equal(Object.keys(grown.keys).length, 1001);
  assert.equal(Object.keys(grown.index.certs).length, 1001);
  const k = grown.keys['synthetic-000999'];
  assert.equal(grown.index.certs[k.certificate!].key, 'synthetic-000999');
  assert.deepEqual(k.policies, ['p']);
  assert.equal(Object.keys(content.keys).length, 1, 'the input is not modified');
});

test('/proc readers see this process', () => {
  assert.ok(processTree(process.pid).includes(process.pid));
  assert.ok(cpuSeconds(process.pid) > 0);
  assert.ok(memKiB(process.pid, 'VmRSS') > 1000);
});
