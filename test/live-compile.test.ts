// The live compile (compiler/live-compile.ts): the portal keeps its last compile in memory and a
// new key file is parsed and resolved alone, the content patched (compiler/wire-patch.ts). Every
// result must be byte for byte, diagnostic for diagnostic, what a full uncached compile of the
// same directory gives: after adding a key, editing one, removing one, a refused (invalid) one,
// a changed certificate file, a new directory, and after a policy change (a full compile).
// On a generated config (bench/gen-config.ts) of 300 keys in 3 key files, plus a catalog plan.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateCompileConfig } from '../bench/gen-config.ts';
import { fingerprintOf } from '../cert/fingerprint.ts';
import { createCa, issueCert, type Issued } from '../cli/pki.ts';
import { compileDir, type CompileOptions } from '../compiler/index.ts';
import { LiveCompiler, type LiveMode } from '../compiler/live-compile.ts';
import { createCrl } from './helpers/demo-crl.ts';
import { tempDir } from './helpers/ops-fixtures.ts';

const t = tempDir('live-compile');
after(() => t.cleanup());
const NOW = new Date();
let pristine = '';
let ca: Issued;

before(async () => {
  const gen = await generateCompileConfig(join(t.dir, 'gen'), { apis: 10, keys: 300 });
  pristine = join(t.dir, 'pristine');
  cpSync(gen.dir, pristine, { recursive: true });
  const docs = readFileSync(join(pristine, 'keys/keys-000.yaml'), 'utf8').split(/^---\n/m);
  rmSync(join(pristine, 'keys/keys-000.yaml'));
  for (let f = 0; f < 3; f++) writeFileSync(join(pristine, `keys/part-${f}.yaml`), docs.slice(f * 100, f * 100 + 100).join('---\n'));
  writeFileSync(
    join(pristine, 'policies-portal.yaml'),
    'kind: policy\nid: self-serve\naccess_rights:\n  api-0000: {}\nportal:\n  name: Self serve\n---\nkind: policy\nid: reviewed\naccess_rights:\n  api-0001: {}\n  api-0002: {}\nrate: 7\nper: 1\nportal:\n  name: Reviewed\n  require_approval: true\n',
  );
  ca = await createCa('live compile test CA');
});

function workspace(name: string): string {
  const dir = join(t.dir, name);
  cpSync(pristine, dir, { recursive: true });
  return dir;
}

/** The live result equals a full uncached compile: bytes, diagnostics, errors, plans. */
async function step(live: LiveCompiler, dir: string, expected: LiveMode, opts: CompileOptions = {}) {
  const got = await live.compile();
  const full = await compileDir(dir, { now: NOW, ...opts });
  assert.deepEqual(got.diagnostics, full.diagnostics);
  assert.equal(got.errorCount, full.errorCount);
  if (full.bundle === null) assert.equal(got.bundle, null);
  else assert.ok(got.bundle?.equals(full.bundle), `the bytes of a full compile (${got.live})`);
  assert.deepEqual(got.portalPlans, full.portalPlans);
  assert.equal(got.live, expected);
  return got;
}

/** A key file as the portal writes it: the certificate inline. */
async function portalKey(dir: string, id: string, policy: string, extra = ''): Promise<string> {
  const leaf = await issueCert(ca, id);
  const file = join(dir, 'keys', 'portal', `${id}.yaml`);
  writeFileSync(file, `kind: key\nid: ${id}\ncertificate: |\n${leaf.certPem.trimEnd().replace(/^/gm, '  ')}\napply_policies: [${policy}]\n${extra}`);
  return file;
}

for (const cacheDir of [undefined, 'cache']) {
  const label = cacheDir ? 'with a disk cache' : 'without a disk cache';

  test(`live compile ${label}: new, edited, refused and removed keys give a full compile's bytes`, async () => {
    const dir = workspace(`keys-${cacheDir ?? 'plain'}`);
    mkdirSync(join(dir, 'keys', 'portal'));
    const opts = { now: NOW, ...(cacheDir ? { cacheDir: join(t.dir, `${cacheDir}-keys`) } : {}) };
    const live = new LiveCompiler(dir, opts);
    try {
      await step(live, dir, 'full');
      await step(live, dir, 'unchanged');
      assert.ok((await live.compile()).portalPlans.some((p) => p.id === 'self-serve'));

      // A new key (a new session: its plan was used by no key), then a second one on the same plan.
      const a = await portalKey(dir, 'portal-0000000a', 'self-serve');
      await step(live, dir, 'incremental');
      await portalKey(dir, 'portal-0000000b', 'reviewed', 'is_inactive: true\nexpires: 2099-01-01T00:00:00Z\n');
      await step(live, dir, 'incremental');
      // An id that sorts before every other key (its session becomes the first one).
      await portalKey(dir, 'aaa-first', 'reviewed');
      await step(live, dir, 'incremental');

      // Edited: another plan, switched off; then its certificate replaced.
      writeFileSync(a, readFileSync(a, 'utf8').replace('apply_policies: [self-serve]', 'apply_policies: [reviewed]\nis_inactive: true'));
      await step(live, dir, 'incremental');
      await portalKey(dir, 'portal-0000000a', 'self-serve');
      await step(live, dir, 'incremental');

      // Refused: a key id and a certificate another file already declares. The result is the
      // full compile's (every diagnostic); once the file is removed the kept state answers again.
      const taken = readFileSync(join(dir, 'keys/part-0.yaml'), 'utf8').split(/^---\n/m)[0]!;
      const dup = join(dir, 'keys', 'portal', 'portal-dddddddd.yaml');
      writeFileSync(dup, taken);
      const refused = await step(live, dir, 'full');
      assert.ok(refused.errorCount > 0);
      rmSync(dup);
      await step(live, dir, 'unchanged');
      // Refused: an unknown plan.
      const bad = await portalKey(dir, 'portal-eeeeeeee', 'no-such-plan');
      assert.ok((await step(live, dir, 'full')).errorCount > 0);
      rmSync(bad);
      await step(live, dir, 'unchanged');

      // A key file of the generated config: one key removed, another given a token.
      const part = join(dir, 'keys/part-2.yaml');
      const docs = readFileSync(part, 'utf8').split(/^---\n/m);
      const token = createHash('sha256').update('live-compile-token').digest('hex');
      docs[5] = `${docs[5]!.trimEnd()}\ntoken_sha256: ${token}\n`;
      writeFileSync(part, [...docs.slice(0, 3), ...docs.slice(4)].join('---\n'));
      const patchedBefore = live.emits.patched;
      await step(live, dir, 'incremental');
      // Two keys of the 100 changed: only they are taken out and put in (the content patched).
      assert.equal(live.emits.patched, patchedBefore + 1, JSON.stringify(live.emits));
      // Every key of a file switched off, then on again: more than 64 keys, built again.
      const part1 = join(dir, 'keys/part-1.yaml');
      const part1Text = readFileSync(part1, 'utf8');
      writeFileSync(part1, part1Text.replace(/^id: .*$/gm, '$&\nis_inactive: true'));
      await step(live, dir, 'incremental');
      writeFileSync(part1, part1Text);
      await step(live, dir, 'incremental');

      // A certificate file a key reads, replaced by another certificate.
      const certFile = join(dir, 'certs/000/key-000010.pem');
      writeFileSync(certFile, (await issueCert(ca, 'replaced')).certPem);
      await step(live, dir, 'incremental');

      // A new directory with a key file in it.
      mkdirSync(join(dir, 'keys', 'team'));
      await portalKey(dir, 'portal-0000000c', 'self-serve');
      writeFileSync(join(dir, 'keys', 'team', 'one.yaml'), readFileSync(join(dir, 'keys', 'portal', 'portal-0000000c.yaml')));
      rmSync(join(dir, 'keys', 'portal', 'portal-0000000c.yaml'));
      await step(live, dir, 'incremental');

      // Removed.
      rmSync(a);
      await step(live, dir, 'incremental');

      // A policy change is not a key file: everything is compiled again.
      const policies = join(dir, 'policies.yaml');
      writeFileSync(policies, readFileSync(policies, 'utf8').replace('rate: 100\n', 'rate: 99\n'));
      await step(live, dir, 'full');
      await step(live, dir, 'unchanged');
      await portalKey(dir, 'portal-0000000f', 'self-serve');
      await step(live, dir, 'incremental');
      assert.ok(live.counts.incremental >= 10, JSON.stringify(live.counts));
      // Portal keys and a few keys of a file patch the kept content; edits of more than 64 keys build it again.
      assert.ok(live.emits.patched >= 7 && live.emits.rebuilt >= 2, JSON.stringify(live.emits));
    } finally {
      live.close();
    }
  });
}

test('live compile: the certificate of a key an API pins, swapped, put back, the key removed and put back: patched, never built again', async () => {
  const dir = workspace('pinned');
  const live = new LiveCompiler(dir, { now: NOW });
  try {
    await step(live, dir, 'full');
    // The generated static API pins the first ten keys' certificates (bench/gen-config.ts).
    const apis = readdirSync(join(dir, 'apis'))
      .map((f) => readFileSync(join(dir, 'apis', f), 'utf8'))
      .join('\n');
    const certFile = join(dir, 'certs/000/key-000003.pem');
    const original = readFileSync(certFile, 'utf8');
    assert.ok(apis.includes(`sha256:${fingerprintOf(new X509Certificate(original).raw)}`), 'key-000003 holds a pinned certificate');
    const { patched, rebuilt } = live.emits;
    // Swapped: the pin stays in the table alone (no key), the key takes its new certificate.
    writeFileSync(certFile, (await issueCert(ca, 'pinned-swap')).certPem);
    await step(live, dir, 'incremental');
    // Put back: the key takes the pinned entry again.
    writeFileSync(certFile, original);
    await step(live, dir, 'incremental');
    // The key taken out of its file (the pin alone again), then put back.
    const part = join(dir, 'keys/part-0.yaml');
    const text = readFileSync(part, 'utf8');
    const docs = text.split(/^---\n/m);
    const at = docs.findIndex((d) => /^id: key-000003$/m.test(d));
    assert.ok(at >= 0);
    writeFileSync(part, docs.filter((_, i) => i !== at).join('---\n'));
    await step(live, dir, 'incremental');
    writeFileSync(part, text);
    await step(live, dir, 'incremental');
    assert.deepEqual(live.emits, { patched: patched + 4, rebuilt }, 'each change patched the kept content');
  } finally {
    live.close();
  }
});

test('live compile: a broken policy is reported as a full compile reports it, and the fix is seen', async () => {
  const dir = workspace('broken');
  const live = new LiveCompiler(dir, { now: NOW });
  try {
    await step(live, dir, 'full');
    const policies = join(dir, 'policies.yaml');
    const text = readFileSync(policies, 'utf8');
    writeFileSync(policies, text.replace('rate: 100\n', 'rate: fast\n'));
    assert.ok((await step(live, dir, 'full')).errorCount > 0);
    // Still broken: compiled again in full (the kept state is the last good one, not this).
    assert.ok((await step(live, dir, 'full')).errorCount > 0);
    // Fixed back to the text it last compiled with: the kept state is the directory again.
    writeFileSync(policies, text);
    await step(live, dir, 'unchanged');
    await portalKey(dir, 'portal-00000001', 'self-serve').catch(() => mkdirSync(join(dir, 'keys', 'portal')));
    await portalKey(dir, 'portal-00000001', 'self-serve');
    await step(live, dir, 'incremental');
  } finally {
    live.close();
  }
});

test('live compile with a revocation document: a key file change is incremental, a CRL change compiles everything', async () => {
  // Revocations depend on the CAs, their CRL files and the clock, never on keys: a new key keeps them.
  const dir = workspace('revocation');
  mkdirSync(join(dir, 'keys', 'portal'));
  mkdirSync(join(dir, 'trust'));
  const nextUpdate = new Date(Math.floor(NOW.getTime() / 1000) * 1000 + 72 * 3_600_000);
  const crl = join(dir, 'trust', 'root.crl');
  writeFileSync(join(dir, 'trust', 'ca.pem'), ca.certPem);
  writeFileSync(crl, await createCrl(ca, ['01'], { nextUpdate }));
  writeFileSync(
    join(dir, 'trust', 'trust.yaml'),
    'kind: api\nid: trusted\nproxy:\n  listen_path: /trusted/\n  target_url: http://127.0.0.1:9000\nuse_keyless: true\nuse_mutual_tls_auth: true\nclient_certificates: [ca.pem]\n---\nkind: revocation\nid: root\ncrl: [root.crl]\n',
  );
  const live = new LiveCompiler(dir, { now: NOW });
  try {
    await step(live, dir, 'full');
    await portalKey(dir, 'portal-0000000a', 'self-serve');
    await step(live, dir, 'incremental');
    // The CRL file is not a key file's: everything is compiled again, and the new serial is in.
    writeFileSync(crl, await createCrl(ca, ['01', '02'], { nextUpdate }));
    const revoked = await step(live, dir, 'full');
    assert.deepEqual(Object.values(revoked.wire!.revocation.crls)[0]!.serials, ['1', '2']);
    await portalKey(dir, 'portal-0000000b', 'self-serve');
    await step(live, dir, 'incremental');
  } finally {
    live.close();
  }
});
