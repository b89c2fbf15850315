// The portal over HTTP, in-process, with the real compiler (the live compile the portal command
// uses, compiler/live-compile.ts; its bundles are compared with full compiles): headers on every answer, CSRF,
// the size cap, each certificate refusal, proof of possession, the rollback of a failed
// recompile, receipts instead of lookups by name, twenty concurrent submissions, and the
// per-client submission limit.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { request } from 'node:http';
import { join } from 'node:path';
import pino from 'pino';
import { createCa, issueCert, type DemoPki } from '../cli/pki.ts';
import { loadBundle } from '../bundle/read.ts';
import { createPortal, SECURITY_HEADERS, type Portal } from '../portal/server.ts';
import { compileConfig, compilerFor, type CompileFn } from '../portal/compile.ts';
import { syncBundle } from '../portal/issue-key.ts';
import { tempDir } from './helpers/ops-fixtures.ts';
import { demoPki } from './helpers/serve-fixtures.ts';
import { freshClient, openForm, runSignCommand, snapshotDir, submitJson, writePortalConfig } from './helpers/portal-fixtures.ts';

const t = tempDir('portal-server');
let pki: DemoPki;
let config: string;
let bundle: string;
let portal: Portal;
let base: string;
/**
 * When set to n, the n-th compile from now first writes a broken API file into the directory:
 * a bad edit landing while a submission is in flight. A submission compiles twice (validate,
 * then recompile with the new key), so 2 breaks its recompile.
 */
let breakOnCompile = 0;
/** The portal's log lines (JSON). */
const logged: Record<string, unknown>[] = [];

const liveCompile = compilerFor({ live: true });
const compile: CompileFn = async (dir) => {
  if (breakOnCompile > 0 && --breakOnCompile === 0) writeFileSync(join(dir, 'apis', 'broken.yaml'), 'kind: api\nid: broken\n');
  return liveCompile(dir);
};

before(async () => {
  pki = await demoPki(t.dir);
  config = writePortalConfig(t.dir, 'http://127.0.0.1:9', pki);
  bundle = join(t.dir, 'bundle.json');
  const compiled = await syncBundle(config, bundle, compile);
  assert.equal(compiled.errorCount, 0, compiled.report);
  // This file sends far more submissions from one address than the default limit allows;
  // the limit itself is tested below with its own portal.
  portal = createPortal({
    configDir: config,
    bundlePath: bundle,
    gatewayUrl: 'https://gw.example.test:8443',
    compile,
    submissionLimit: { burst: 1000, perHour: 1000 },
    logger: pino({ level: 'info' }, { write: (line: string) => void logged.push(JSON.parse(line)) }),
  });
  await new Promise<void>((r) => portal.server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(portal.server.address() as AddressInfo).port}`;
});

after(async () => {
  await new Promise<void>((r) => (portal.server.close(() => r()), portal.server.closeAllConnections()));
  t.cleanup();
});

function assertSecurityHeaders(res: Response, what: string): void {
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) {
    // The stylesheet may be cached (revalidated); pages never are.
    if (name === 'cache-control' && what === '/style.css') assert.equal(res.headers.get(name), 'no-cache');
    else assert.equal(res.headers.get(name), value, `${what}: ${name}`);
  }
}

test('every answer carries the CSP and the other protective headers', async () => {
  assert.match(SECURITY_HEADERS['content-security-policy'], /^default-src 'none'; style-src 'self';.*form-action 'self'; frame-ancestors 'none'/);
  for (const [path, status] of [
    ['/', 200],
    ['/style.css', 200],
    ['/requests', 200],
    ['/requests/portal-00000000', 404],
    ['/requests/..%2f..%2fetc', 404],
    ['/nope', 404],
  ] as const) {
    const res = await fetch(base + path);
    assert.equal(res.status, status, path);
    assertSecurityHeaders(res, path);
  }
  const post = await fetch(`${base}/requests`, { method: 'POST', body: 'x=1', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  assert.equal(post.status, 403);
  assertSecurityHeaders(post, 'POST without a token');
  const form = await openForm(base);
  assert.doesNotMatch(form.page, /<script/i);
  const first = await fetch(`${base}/`);
  assert.match(first.headers.get('set-cookie') ?? '', /^mtlsgate_portal_csrf=[\w-]+; Path=\/; HttpOnly; SameSite=Strict$/);
});

test('a submission without the matching CSRF token, or from another site, is refused and writes nothing', async () => {
  const before = snapshotDir(config);
  const leaf = await issueCert(pki.ca, 'csrf');
  const form = await openForm(base);
  const other = await openForm(base);
  const fields = { policy: 'profile-self-serve', developer: 'mallory', certificate: leaf.certPem };
  assert.equal((await submitJson(base, { ...form, token: other.token }, fields)).status, 403);
  assert.equal((await submitJson(base, { ...form, cookie: '' }, fields)).status, 403);
  const cross = await fetch(`${base}/requests`, {
    method: 'POST',
    headers: { cookie: form.cookie, origin: 'https://evil.example', 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ csrf: form.token, ...fields }).toString(),
  });
  assert.equal(cross.status, 403);
  assert.match(await cross.text(), /sent from another site/);
  assert.deepEqual(snapshotDir(config), before);
});

test('each certificate problem gets its message on the page, and nothing is written', async () => {
  const before = snapshotDir(config);
  const bundleBefore = readFileSync(bundle);
  const form = await openForm(base);
  const expired = await issueCert(pki.ca, 'old', { notBefore: new Date(Date.now() - 10 * 86_400_000), notAfter: new Date(Date.now() - 86_400_000) });
  const otherCa = await createCa('someone else');
  const fresh = await issueCert(pki.ca, 'fresh');
  const alice = readFileSync(join(pki.dir, 'alice.pem'), 'utf8');
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ certificate: fresh.certPem + fresh.keyPem }, /a private key never leaves your machine/],
    [{ certificate: fresh.certPem + otherCa.certPem }, /Found 2 certificates; submit exactly one/],
    [{ certificate: 'not a certificate' }, /No certificate found/],
    [{ certificate: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' }, /could not be parsed/],
    [{ certificate: expired.certPem }, /expired on/],
    [{ certificate: otherCa.certPem }, /This is a CA certificate/],
    [{ certificate: alice }, /already bound to a key\./],
    [{ certificate: fresh.certPem, policy: 'internal' }, /no longer offered/],
    [{ certificate: fresh.certPem, developer: '' }, /Enter your name or email/],
  ];
  for (const [override, message] of cases) {
    const body = new URLSearchParams({ csrf: form.token, policy: 'profile-self-serve', developer: 'dev@example.com', ...override });
    const res = await fetch(`${base}/requests`, {
      method: 'POST',
      headers: { cookie: form.cookie, 'content-type': 'application/x-www-form-urlencoded' },
      body: body.toString(),
    });
    const page = await res.text();
    assert.equal(res.status, 422, String(message));
    assert.match(page, /class="error-summary" role="alert"/);
    assert.match(page, message);
  }
  assert.deepEqual(snapshotDir(config), before);
  assert.ok(readFileSync(bundle).equals(bundleBefore));
  // The live compile's next answer is the directory as it is again: a full compile's bytes.
  assert.ok((await compile(config)).bundle?.equals((await compileConfig(config)).bundle!));
});

test('input beyond the cap is refused with 413 without reading the rest', async () => {
  const form = await openForm(base);
  // Declared too large: answered from the headers alone.
  const big = await fetch(`${base}/requests`, {
    method: 'POST',
    headers: { cookie: form.cookie, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ csrf: form.token, policy: 'profile-self-serve', developer: 'x', certificate: 'A'.repeat(40_000) }).toString(),
  });
  assert.equal(big.status, 413);
  assert.match(await big.text(), /larger than 24 KiB/);
  // Chunked, no length announced: cut off at the cap, the connection closed.
  const status = await new Promise<number>((resolve, reject) => {
    const req = request(
      `${base}/requests`,
      { method: 'POST', headers: { cookie: form.cookie, 'content-type': 'application/x-www-form-urlencoded', 'transfer-encoding': 'chunked' } },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', reject);
    req.write('certificate=' + 'A'.repeat(30_000));
    // The rest is never sent: the portal must answer without it.
  });
  assert.equal(status, 413);
});

test('a certificate file upload (DER, multipart) is accepted like a paste', async () => {
  const form = await openForm(base);
  const leaf = await freshClient(pki, t.dir, 'uploader', 'rsa');
  const body = new FormData();
  body.set('csrf', form.token);
  body.set('challenge', form.challenge);
  body.set('signature', await runSignCommand(form.command, leaf.keyFile));
  body.set('policy', 'profile-self-serve');
  body.set('developer', 'uploader@example.com');
  body.set('certificate', '');
  body.set('certificate_file', new Blob([Buffer.from(leaf.cert.rawData)]), 'cert.der');
  const res = await fetch(`${base}/requests`, { method: 'POST', headers: { cookie: form.cookie }, body, redirect: 'manual' });
  assert.equal(res.status, 303);
  const location = res.headers.get('location') ?? '';
  assert.match(location, /^\/requests\/portal-[0-9a-f]{8}\?receipt=portal-[0-9a-f]{8}\.[\w-]+&issued=1$/);
  const page = await (await fetch(base + location)).text();
  assert.match(page, new RegExp(`sha256:${leaf.fingerprint}`));
  assert.match(page, /Your key is ready/);
});

test('a recompile that fails removes the new key file; the developer is told the log has why, the log holds the report', async () => {
  const before = snapshotDir(config);
  const bundleBefore = readFileSync(bundle);
  const form = await openForm(base);
  const leaf = await freshClient(pki, t.dir, 'rollback');
  breakOnCompile = 2;
  const r = await submitJson(base, form, { policy: 'profile-self-serve', developer: 'dev', certificate: leaf.certPem }, leaf.keyFile);
  rmSync(join(config, 'apis', 'broken.yaml'), { force: true });
  assert.equal(r.status, 409);
  const errors = r.body.errors as Array<{ message: string; details?: string }>;
  assert.match(errors[0].message, /did not compile with your key added.*The platform team can see why in the portal log\./);
  // The compiler's report names the config's files and quotes their lines: not for a developer.
  assert.equal(errors[0].details, undefined);
  assert.doesNotMatch(JSON.stringify(r.body), /broken\.yaml/);
  const line = logged.find((l) => l.msg === 'portal: the configuration does not compile');
  assert.match(String(line?.report), /broken\.yaml/);
  assert.deepEqual(snapshotDir(config), before);
  assert.ok(readFileSync(bundle).equals(bundleBefore));
  // The live compile's next answer is the directory as it is again: a full compile's bytes.
  assert.ok((await compile(config)).bundle?.equals((await compileConfig(config)).bundle!));
});

test('twenty concurrent submissions: twenty distinct key files, one valid bundle holding all twenty', async () => {
  const leaves = await Promise.all(Array.from({ length: 20 }, (_, i) => freshClient(pki, t.dir, `burst-${i}`)));
  // Each browser gets its own challenge; the signatures are made first, the posts then race.
  const forms = await Promise.all(leaves.map(() => openForm(base)));
  const signatures = await Promise.all(leaves.map((leaf, i) => runSignCommand(forms[i].command, leaf.keyFile)));
  const results = await Promise.all(
    leaves.map((leaf, i) =>
      submitJson(base, forms[i], {
        policy: i % 2 ? 'profile-reviewed' : 'profile-self-serve',
        developer: `burst-${i}@example.com`,
        certificate: leaf.certPem,
        challenge: forms[i].challenge,
        signature: signatures[i],
      }),
    ),
  );
  for (const r of results) assert.equal(r.status, 201, JSON.stringify(r.body));
  // Twenty recompiles by the live compile, one file each: the bundle is a full compile's.
  assert.ok(readFileSync(bundle).equals((await compileConfig(config)).bundle!), 'the bytes of a full compile');
  const ids = results.map((r) => r.body.key_id as string);
  assert.equal(new Set(ids).size, 20);
  const files = readdirSync(join(config, 'keys', 'portal')).filter((f) => ids.includes(f.replace(/\.yaml$/, '')));
  assert.equal(files.length, 20);
  const content = loadBundle(readFileSync(bundle)).content;
  leaves.forEach((leaf, i) => {
    assert.equal(content.index.certs[leaf.fingerprint]?.key, ids[i]);
    assert.equal(results[i].body.fingerprint, `sha256:${leaf.fingerprint}`);
    assert.equal(content.keys[ids[i]].is_inactive, i % 2 === 1);
    assert.equal(results[i].body.status, i % 2 ? 'pending_approval' : 'active');
  });
  assert.deepEqual(results[0].body.curl, ['curl --cert your-cert.pem --key your-key.pem https://gw.example.test:8443/profile/']);

  // A key's status needs its receipt: a name, the key id or another key's receipt show nothing.
  const receipts = results.map((r) => r.body.receipt as string);
  const mine = await fetch(`${base}/requests?receipt=${encodeURIComponent(receipts[1])}`);
  assert.equal(mine.status, 200);
  const minePage = await mine.text();
  assert.match(minePage, new RegExp(`id="key-id">${ids[1]}<`));
  assert.match(minePage, /Awaiting approval/);
  const status = await (await fetch(`${base}/requests/${ids[0]}?receipt=${encodeURIComponent(receipts[0])}`)).text();
  assert.match(status, /Your key is active/);
  assert.match(status, new RegExp(`sha256:${leaves[0].fingerprint}`));
  for (const path of [
    `/requests?developer=${encodeURIComponent('burst-1@example.com')}`,
    `/requests/${ids[0]}`,
    `/requests/${ids[0]}?receipt=${encodeURIComponent(receipts[1])}`,
    `/requests?receipt=${encodeURIComponent(`${ids[0]}.${otherLastChar(receipts[0].split('.')[1])}`)}`,
  ]) {
    const page = await (await fetch(base + path)).text();
    for (const leaf of leaves) assert.doesNotMatch(page, new RegExp(leaf.fingerprint), path);
    for (const id of ids) assert.doesNotMatch(page, new RegExp(id), path);
  }
});

/** The secret with its last character changed (to "A", or "B" when it ends in "A": the forgery must differ from the real receipt). */
function otherLastChar(secret: string): string {
  return secret.slice(0, -1) + (secret.endsWith('A') ? 'B' : 'A');
}

test('proof of possession: a certificate is refused without a signature by its own private key, and a challenge admits one key', async () => {
  const before = snapshotDir(config);
  const victim = await freshClient(pki, t.dir, 'victim');
  const attacker = await freshClient(pki, t.dir, 'attacker', 'rsa');
  const form = await openForm(base);
  const fields = { policy: 'profile-self-serve', developer: 'attacker@example.com', certificate: victim.certPem };
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{}, /Sign the challenge with your private key/],
    [{ challenge: form.challenge, signature: 'not base64!' }, /not base64 text/],
    // Signed, but by the attacker's own key: the victim's public certificate alone is not enough.
    [{ challenge: form.challenge, signature: await runSignCommand(form.command, attacker.keyFile) }, /does not match this certificate/],
  ];
  for (const [proof, message] of cases) {
    const r = await submitJson(base, form, { ...fields, ...proof });
    assert.equal(r.status, 422, JSON.stringify(r.body));
    assert.match(JSON.stringify(r.body.errors), message);
  }
  // A valid signature of a challenge shown to another browser, or one made up, is refused.
  const other = await openForm(base);
  const stolen = { challenge: other.challenge, signature: await runSignCommand(other.command, victim.keyFile) };
  assert.match(JSON.stringify((await submitJson(base, form, { ...fields, ...stolen })).body.errors), /expired or was already used/);
  const madeUp = 'mtlsgate-portal-proof:' + 'A'.repeat(32);
  const forged = await runSignCommand(form.command.replace(form.challenge, madeUp), victim.keyFile);
  assert.match(JSON.stringify((await submitJson(base, form, { ...fields, challenge: madeUp, signature: forged })).body.errors), /expired or was already used/);
  assert.deepEqual(snapshotDir(config), before, 'nothing was written');

  // The holder of the private key gets the key; the same challenge cannot be used twice.
  const signature = await runSignCommand(form.command, victim.keyFile);
  const ok = await submitJson(base, form, { ...fields, developer: 'victim@example.com', challenge: form.challenge, signature });
  assert.equal(ok.status, 201, JSON.stringify(ok.body));
  const second = await freshClient(pki, t.dir, 'victim-2');
  const again = await submitJson(base, form, {
    ...fields,
    certificate: second.certPem,
    challenge: form.challenge,
    signature: await runSignCommand(form.command, second.keyFile),
  });
  assert.equal(again.status, 422);
  assert.match(JSON.stringify(again.body.errors), /expired or was already used/);
});

test('a certificate pinned by an API (static mTLS) is refused, even with a valid proof', async () => {
  const pinnedClient = await freshClient(pki, t.dir, 'pinned-partner');
  const apiFile = join(config, 'apis', 'static.yaml');
  // Inside the config directory (config reads are confined): pinned by file, as a repository would.
  copyFileSync(pinnedClient.certFile, join(config, 'certs', 'pinned-partner.pem'));
  writeFileSync(
    apiFile,
    `kind: api\nid: partner\nproxy:\n  listen_path: /partner/\n  target_url: http://127.0.0.1:9\nuse_keyless: true\nuse_mutual_tls_auth: true\nclient_certificates:\n  - ../certs/pinned-partner.pem\n`,
  );
  try {
    const form = await openForm(base);
    const r = await submitJson(
      base,
      form,
      { policy: 'profile-self-serve', developer: 'x@example.com', certificate: pinnedClient.certPem },
      pinnedClient.keyFile,
    );
    assert.equal(r.status, 422, JSON.stringify(r.body));
    assert.match(JSON.stringify(r.body.errors), /already pinned by an API/);
  } finally {
    rmSync(apiFile);
  }
});

test('submissions are rate-limited per client: 429 with Retry-After once the budget is spent, nothing written', async () => {
  const limited = createPortal({
    configDir: config,
    bundlePath: bundle,
    gatewayUrl: 'https://gw.example.test:8443',
    submissionLimit: { burst: 3, perHour: 3 },
  });
  await new Promise<void>((r) => limited.server.listen(0, '127.0.0.1', r));
  const limitedBase = `http://127.0.0.1:${(limited.server.address() as AddressInfo).port}`;
  try {
    const form = await openForm(limitedBase);
    const fields = { policy: 'profile-self-serve', developer: 'spam@example.com', certificate: 'not a certificate' };
    for (let i = 0; i < 3; i++) assert.equal((await submitJson(limitedBase, form, fields)).status, 422);
    const before = snapshotDir(config);
    const res = await fetch(`${limitedBase}/requests`, {
      method: 'POST',
      headers: { cookie: form.cookie, accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf: form.token, ...fields }).toString(),
    });
    assert.equal(res.status, 429);
    assert.ok(Number(res.headers.get('retry-after')) >= 1);
    assert.match(await res.text(), /Too many submissions/);
    assert.deepEqual(snapshotDir(config), before);
  } finally {
    await new Promise<void>((r) => (limited.server.close(() => r()), limited.server.closeAllConnections()));
  }
});
