// docs/security.md section 26: `mtlsgate check` judges a CA the config trusts as path validation
// will judge it at runtime. Before, a CA that can issue no client certificate (keyUsage without
// keyCertSign, an extendedKeyUsage without clientAuth, a critical extension nobody processes,
// not valid yet) compiled without a word, and every leaf below it was refused at runtime. Each
// verdict here is also `openssl verify -purpose sslclient`'s and the runtime's (ClientIdentity).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fingerprintOf } from '../cert/fingerprint.ts';
import { createCa, issueCert } from '../cli/pki.ts';
import type { CompileResult } from '../compiler/index.ts';
import { ClientIdentity } from '../runtime/identity.ts';
import { compileDir } from './helpers/compile-and-load.ts';
import { api, removeConfigs, writeConfig } from './fixtures/compiler/helpers.ts';
import { opensslIssue, opensslSelfSigned } from './helpers/openssl-pki.ts';

after(removeConfigs);

const DAY = 86_400_000;
const CA = 'basicConstraints = critical, CA:true';
const LEAF =
  'basicConstraints = critical, CA:false\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = clientAuth\nsubjectAltName = DNS:svc.example.com';

/** CA name -> its extensions (openssl config lines). */
const CAS: Record<string, string> = {
  good: `${CA}\nkeyUsage = critical, keyCertSign, cRLSign`,
  'no-certsign': `${CA}\nkeyUsage = critical, digitalSignature, cRLSign`,
  'eku-server': `${CA}\nkeyUsage = critical, keyCertSign\nextendedKeyUsage = serverAuth`,
  'critical-ext': `${CA}\nkeyUsage = critical, keyCertSign\n1.3.6.1.4.1.55555.1 = critical, ASN1:UTF8String:must be understood`,
  'nc-rid': `${CA}\nkeyUsage = critical, keyCertSign\nnameConstraints = critical, permitted;RID:1.2.3.4`,
  'signer-not-ca': 'keyUsage = critical, keyCertSign, digitalSignature',
};

describe('mtlsgate check: a trusted CA that refuses every leaf below it', () => {
  let dir: string;
  let result: CompileResult;
  /** CA name -> does `openssl verify -purpose sslclient` pass a client leaf below it; does the runtime. */
  const verdicts: Record<string, { openssl: boolean; runtime: boolean }> = {};

  before(async () => {
    const apiFile = (name: string) => api(name, `use_keyless: true\nuse_mutual_tls_auth: true\nclient_certificates: [pki/${name}.pem]\n`);
    const files: Record<string, string> = {};
    for (const name of [...Object.keys(CAS), 'future']) files[`a-${name}.yaml`] = apiFile(name);
    // A certificate_match issuer is trusted too: judged at its `issuer` field.
    files['k.yaml'] = 'kind: key\nid: k\ncertificate_match:\n  issuer: pki/matcher-eku-server.pem\n  san_dns: svc.example.com\n';
    dir = writeConfig(files);
    const pki = join(dir, 'pki');
    mkdirSync(pki);
    let serial = 100;
    const judge = (name: string, caPem: string, leafPem: string, leafFile: string) => {
      // -x509_strict: without it OpenSSL takes a certificate with keyCertSign and no
      // basicConstraints as a CA (a pre-RFC 5280 habit); RFC 5280 6.1.4 (k) and mtlsgate do not.
      const verify = spawnSync('openssl', ['verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', join(pki, `${name}.pem`), leafFile]);
      const ca = new X509Certificate(caPem);
      const runtime = new ClientIdentity(new X509Certificate(leafPem), []).issuedBy({ fingerprint: fingerprintOf(ca.raw), cert: ca }, Date.now());
      verdicts[name] = { openssl: verify.status === 0, runtime };
    };
    for (const [name, extensions] of Object.entries({ ...CAS, 'matcher-eku-server': CAS['eku-server'] })) {
      const ca = opensslSelfSigned(pki, name, `${name} CA`, extensions);
      const leaf = opensslIssue(pki, `${name}-leaf`, name, '/CN=svc.example.com', LEAF, ++serial);
      judge(name, ca.certPem, leaf.certPem, leaf.cert);
    }
    // Not valid for ten more days (openssl 3.0's req cannot set a notBefore: made with cli/pki.ts).
    const future = await createCa('future CA', { notBefore: new Date(Date.now() + 10 * DAY), notAfter: new Date(Date.now() + 400 * DAY) });
    const futureLeaf = await issueCert(future, 'svc.example.com');
    writeFileSync(join(pki, 'future.pem'), future.certPem);
    writeFileSync(join(pki, 'future-leaf.pem'), futureLeaf.certPem);
    judge('future', future.certPem, futureLeaf.certPem, join(pki, 'future-leaf.pem'));
    result = await compileDir(dir);
  });

  const at = (code: string, file: string) => result.diagnostics.filter((d) => d.code === code && d.file === file);

  it('an error at the client_certificates entry, or the issuer field, naming a CA that can issue no client certificate', () => {
    const cases: [string, RegExp][] = [
      ['no-certsign', /keyUsage lacks keyCertSign/],
      ['eku-server', /extendedKeyUsage \(1\.3\.6\.1\.5\.5\.7\.3\.1\) does not admit clientAuth/],
      ['critical-ext', /critical extension 1\.3\.6\.1\.4\.1\.55555\.1 not processed/],
      ['future', /not valid before 20\d\d-/],
    ];
    for (const [name, message] of cases) {
      const [d] = at('E_CA_UNUSABLE', `a-${name}.yaml`);
      assert.ok(d, `${name}: ${JSON.stringify(result.diagnostics)}`);
      assert.deepEqual([d.severity, d.line, d.col], ['error', 8, 23], name);
      assert.match(d.message, message, name);
      assert.match(d.message, new RegExp(`CA certificate pki/${name}\\.pem \\(CN=${name} CA[^)]*\\) can issue no client certificate`));
      assert.deepEqual(verdicts[name], { openssl: false, runtime: false }, `${name}: OpenSSL and the runtime refuse its leaf`);
    }
    const [m] = at('E_CA_UNUSABLE', 'k.yaml');
    assert.deepEqual([m?.line, m?.col], [4, 11], 'a certificate_match issuer is reported at its issuer field');
    assert.deepEqual(verdicts['matcher-eku-server'], { openssl: false, runtime: false });
    assert.equal(result.bundle, null);
  });

  it('a CA that passes, and one whose only oddity is a name form nobody evaluates, are not errors', () => {
    assert.deepEqual(
      result.diagnostics.filter((d) => d.file === 'a-good.yaml'),
      [],
    );
    assert.deepEqual(verdicts.good, { openssl: true, runtime: true });
    assert.deepEqual(at('E_CA_UNUSABLE', 'a-nc-rid.yaml'), []);
    const [w] = at('W_CA_NAME_FORMS', 'a-nc-rid.yaml');
    assert.deepEqual([w?.severity, w?.line, w?.col], ['warning', 8, 23]);
    assert.match(w.message, /GeneralName tag 0x88/);
    assert.deepEqual(verdicts['nc-rid'], { openssl: true, runtime: true }, 'a leaf without such a name passes');
  });

  it('a certificate that signs certificates without basicConstraints CA:TRUE is a pin: a warning says what it issued is refused', () => {
    const [w] = at('W_CERT_NOT_CA', 'a-signer-not-ca.yaml');
    assert.deepEqual([w?.severity, w?.line, w?.col], ['warning', 8, 23]);
    assert.match(w.message, /not trusted as a CA, so every certificate it issued is refused/);
    // Strict OpenSSL refuses it as a CA; the gateway never asks (a pin is not among an API's CAs).
    assert.equal(verdicts['signer-not-ca'].openssl, false);
  });
});
