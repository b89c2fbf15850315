// The portal's pieces that need no compiler: certificate validation, HTML escaping, CSRF
// tokens, the catalog filter, the key file (render, read back, approve), the form parser.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { IncomingMessage } from 'node:http';
import { createCa, issueCert, type Issued } from '../cli/pki.ts';
import type { BundleApi, BundleContent } from '../bundle/types.ts';
import { validateCertificate, MAX_CERT_BYTES, PRIVATE_KEY_REFUSAL } from '../portal/validate-cert.ts';
import { html, escapeHtml } from '../portal/html.ts';
import { CsrfGuard, CSRF_COOKIE, isCrossSite } from '../portal/csrf.ts';
import { apiUrl, loadCatalog } from '../portal/catalog.ts';
import { approvedKeyFile, keyFilePath, listPortalKeys, readPortalKey, renderKeyFile } from '../portal/key-file.ts';
import { parseRequestForm, developerProblem } from '../portal/form.ts';
import { requestPage } from '../portal/page.ts';
import { SerialQueue } from '../portal/queue.ts';
import { withDirLock } from '../portal/dir-lock.ts';
import { emptyBundleContent } from './helpers/bundle-builder.ts';
import { tempDir, waitFor } from './helpers/ops-fixtures.ts';

let ca: Issued;
let leaf: Issued;
const empty = emptyBundleContent;

/** The certificate lookup the portal gets from its compile, over a content's index. */
const usedIn =
  (content: BundleContent) =>
  (fp: string): { key: string | null; apis: string[] } | undefined =>
    content.index.certs[fp];

before(async () => {
  ca = await createCa('portal unit CA');
  leaf = await issueCert(ca, 'dev');
});

test('validateCertificate accepts one leaf and normalises it', () => {
  const r = validateCertificate(Buffer.from(`some text before\n${leaf.certPem}\ntrailing`), usedIn(empty()));
  assert.ok(r.ok);
  assert.equal(r.fingerprint, leaf.fingerprint);
  assert.match(r.pem, /^-----BEGIN CERTIFICATE-----\n[\s\S]+-----END CERTIFICATE-----\n$/);
  assert.doesNotMatch(r.pem, /some text/);
});

test('validateCertificate accepts a DER upload', () => {
  const der = Buffer.from(leaf.cert.rawData);
  const r = validateCertificate(der, usedIn(empty()));
  assert.ok(r.ok);
  assert.equal(r.fingerprint, leaf.fingerprint);
});

test('validateCertificate refuses each problem with its own message', async () => {
  const expired = await issueCert(ca, 'old', { notBefore: new Date(Date.now() - 10 * 86_400_000), notAfter: new Date(Date.now() - 86_400_000) });
  const future = await issueCert(ca, 'future', { notBefore: new Date(Date.now() + 86_400_000) });
  const bound = empty();
  bound.index.certs[leaf.fingerprint] = { apis: [], key: 'alice' };
  // Pinned by an API's client_certificates (static mTLS), bound to no key: refused as well.
  const pinned = empty();
  pinned.index.certs[leaf.fingerprint] = { apis: ['reports'], key: null };
  const cases: Array<[Buffer, BundleContent, string, RegExp]> = [
    [Buffer.from('   \n'), empty(), 'missing', /Paste your public certificate/],
    [Buffer.alloc(MAX_CERT_BYTES + 1, 0x41), empty(), 'too_large', /larger than 16 KiB/],
    [Buffer.from(leaf.certPem + leaf.keyPem), empty(), 'private_key', /private key never leaves your machine/],
    [Buffer.from(leaf.keyPem), empty(), 'private_key', /private key/],
    [Buffer.from('-----BEGIN RSA PRIVATE KEY-----\nabc\n-----END RSA PRIVATE KEY-----\n' + leaf.certPem), empty(), 'private_key', /private key/],
    [Buffer.from('hello world'), empty(), 'no_certificate', /No certificate found/],
    [Buffer.from(leaf.certPem + ca.certPem), empty(), 'several', /Found 2 certificates/],
    [Buffer.from(leaf.certPem.replace(/\n[A-Za-z0-9+/]{20}/, '\n!!!!')), empty(), 'unparseable', /could not be parsed/],
    [Buffer.from(ca.certPem), empty(), 'ca', /CA certificate/],
    [
      readFileSync(join(import.meta.dirname, 'fixtures', 'big-keys', 'leaf-rsa16384.pem')),
      empty(),
      'key_size',
      /RSA key has 16384 bits; the gateway accepts at most 8192/,
    ],
    [Buffer.from(expired.certPem), empty(), 'expired', /expired on/],
    [Buffer.from(future.certPem), empty(), 'not_yet_valid', /not valid before/],
    [Buffer.from(leaf.certPem), bound, 'bound', /already bound to a key\./],
    [Buffer.from(leaf.certPem), pinned, 'pinned', /already pinned by an API/],
  ];
  for (const [input, content, problem, message] of cases) {
    const r = validateCertificate(input, usedIn(content));
    assert.equal(r.ok, false, problem);
    if (!r.ok) {
      assert.equal(r.problem, problem);
      assert.match(r.message, message);
    }
  }
  // A DER private key (binary upload) is refused too.
  const { createPrivateKey } = await import('node:crypto');
  const der = createPrivateKey(leaf.keyPem).export({ format: 'der', type: 'pkcs8' });
  const r = validateCertificate(der, usedIn(empty()));
  assert.equal(r.ok ? 'ok' : r.message, PRIVATE_KEY_REFUSAL);
});

test('html escapes every interpolated string, nested templates are inserted once', () => {
  const evil = `<script>alert("x")</script>'&`;
  assert.equal(escapeHtml(evil), '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39;&amp;');
  const out = html`<p title="${evil}">${[html`<b>${evil}</b>`, evil]}</p>`.text;
  assert.doesNotMatch(out, /<script>/);
  assert.match(out, /^<p title="&lt;script&gt;[^"]*"><b>&lt;script/);
});

test('the request page escapes developer input and the config text', () => {
  const page = requestPage({
    catalog: [
      { policy: 'p', name: '<i>Gold</i>', description: '"desc"', requireApproval: true, apis: [{ id: 'a', name: 'A<', domain: null, listenPath: '/a/' }] },
    ],
    chrome: { oidc: false, user: null, csrfToken: '' },
    csrfToken: 'tok"en',
    challenge: 'mtlsgate-portal-proof:x',
    values: { policy: 'p', developer: '"><script>x</script>', certificate: '</textarea><script>y</script>' },
    errors: [{ field: 'developer', message: '<b>bad</b>' }],
  });
  assert.doesNotMatch(page, /<script>|<i>Gold|<b>bad/);
  assert.match(page, /value="&quot;&gt;&lt;script&gt;x&lt;\/script&gt;"/);
  assert.match(page, /&lt;\/textarea&gt;&lt;script&gt;y/);
  assert.match(page, /name="csrf" value="tok&quot;en"/);
  assert.match(page, /aria-invalid="true"/);
  assert.match(page, /<a href="#developer">&lt;b&gt;bad/);
});

test('CSRF: the token matches only its cookie and its session, under this process secret', () => {
  const guard = new CsrfGuard();
  const cookie = guard.newCookieValue();
  const req = (headers: Record<string, string>) => ({ headers }) as unknown as IncomingMessage;
  assert.equal(guard.cookieOf(req({ cookie: `a=b; ${CSRF_COOKIE}=${cookie}` })), cookie);
  assert.equal(guard.cookieOf(req({ cookie: `${CSRF_COOKIE}=bad value` })), null);
  assert.ok(guard.verify(cookie, '', guard.tokenFor(cookie, '')));
  assert.ok(!guard.verify(cookie, '', guard.tokenFor(guard.newCookieValue(), '')));
  assert.ok(!guard.verify(null, '', guard.tokenFor(cookie, '')));
  assert.ok(!guard.verify(cookie, '', undefined));
  assert.ok(!new CsrfGuard().verify(cookie, '', guard.tokenFor(cookie, '')), 'another process secret');
  // Bound to the signed-in session: another session's token, or one from before the sign-in, is refused.
  assert.ok(guard.verify(cookie, 'session-a', guard.tokenFor(cookie, 'session-a')));
  assert.ok(!guard.verify(cookie, 'session-b', guard.tokenFor(cookie, 'session-a')));
  assert.ok(!guard.verify(cookie, 'session-a', guard.tokenFor(cookie, '')));
  assert.match(guard.setCookieHeader(cookie), /HttpOnly; SameSite=Strict/);
  assert.ok(isCrossSite(req({ host: 'portal:3000', origin: 'https://evil.example' })));
  assert.ok(isCrossSite(req({ host: 'portal:3000', 'sec-fetch-site': 'cross-site' })));
  assert.ok(isCrossSite(req({ host: 'portal:3000', origin: 'null' })));
  assert.ok(!isCrossSite(req({ host: 'portal:3000', origin: 'http://portal:3000', 'sec-fetch-site': 'same-origin' })));
  assert.ok(!isCrossSite(req({ host: 'portal:3000' })));
});

function api(id: string, useCertificate: boolean, domain: string | null = null): BundleApi {
  return {
    id,
    name: id.toUpperCase(),
    domain,
    listen_path: `/${id}/`,
    target_url: 'http://127.0.0.1:1',
    strip_listen_path: true,
    upstream_http2: false,
    upstream_tls: null,
    use_keyless: false,
    use_mutual_tls_auth: !useCertificate,
    use_certificate: useCertificate,
    auth_header_name: 'authorization',
    client_certificates: [],
    client_cas: [],
    client_matches: [],
    strip_auth_data: false,
    forward_client_cert: { key_id_header: null, rfc9440: false, xfcc: [] },
  };
}

test('catalog: only portal policies, only their dynamic-mTLS APIs, none without one', () => {
  // The plans as the compiler hands them over (CompileResult.portalPlans: policies with a portal block).
  const plans = [
    { id: 'gold', portal: { name: 'Gold plan', description: 'Fast', require_approval: true }, apiIds: ['dyn', 'stat'] },
    { id: 'static-only', portal: { name: 'Static' }, apiIds: ['stat'] },
    { id: 'bronze', portal: { name: 'Bronze plan' }, apiIds: ['dom'] },
  ];
  const apis = { dyn: api('dyn', true), stat: api('stat', false), dom: api('dom', true, 'api.example.test') };
  const catalog = loadCatalog({ plans, apis });
  assert.deepEqual(
    catalog.map((e) => [e.policy, e.name, e.requireApproval, e.apis.map((a) => a.id)]),
    [
      ['bronze', 'Bronze plan', false, ['dom']],
      ['gold', 'Gold plan', true, ['dyn']],
    ],
  );
  assert.equal(apiUrl('https://localhost:8443', catalog[1].apis[0]), 'https://localhost:8443/dyn/');
  assert.equal(apiUrl('https://localhost:8443', catalog[0].apis[0]), 'https://api.example.test:8443/dom/');
});

test('key file: rendered with its comment, read back, approved with comments kept', () => {
  const t = tempDir('portal-keyfile');
  try {
    const text = renderKeyFile({
      keyId: 'portal-0a1b2c3d',
      policy: 'gold',
      entryName: 'Gold',
      developer: 'dev@example.com',
      owner: 'sub|dev',
      receiptSha256: 'ab'.repeat(32),
      certificatePem: leaf.certPem,
      requireApproval: true,
      requestedAt: new Date('2026-01-02T03:04:05Z'),
    });
    assert.match(text, /^owner: sub\|dev$/m);
    assert.match(text, /^# Issued by the mtlsgate self-serve portal/);
    assert.match(text, /# portal-developer: "dev@example.com"/);
    assert.match(text, /certificate: \|\n {2}-----BEGIN CERTIFICATE-----/);
    assert.match(text, /is_inactive: true/);
    mkdirSync(join(t.dir, 'keys', 'portal'), { recursive: true });
    writeFileSync(keyFilePath(t.dir, 'portal-0a1b2c3d'), text);
    writeFileSync(join(t.dir, 'keys', 'portal', 'notes.yaml'), 'kind: key\nid: other\n');
    const key = readPortalKey(t.dir, 'portal-0a1b2c3d');
    assert.deepEqual(
      { ...key, certificate: key?.certificate.trim(), certificates: key?.certificates.map((c) => c.trim()) },
      {
        keyId: 'portal-0a1b2c3d',
        owner: 'sub|dev',
        policies: ['gold'],
        developer: 'dev@example.com',
        entryName: 'Gold',
        requestedAt: '2026-01-02T03:04:05.000Z',
        pending: true,
        switchedOff: false,
        expires: '',
        certificate: leaf.certPem.trim(),
        certificates: [leaf.certPem.trim()],
        receiptSha256: 'ab'.repeat(32),
      },
    );
    assert.deepEqual(
      listPortalKeys(t.dir).map((k) => k.keyId),
      ['portal-0a1b2c3d'],
    );
    const approved = approvedKeyFile(text, new Date('2026-02-01T00:00:00Z'));
    assert.ok(approved?.wasPending);
    assert.match(approved.text, /is_inactive: false/);
    assert.match(approved.text, /# portal-developer: "dev@example.com"\n/);
    assert.match(approved.text, /# portal-approved: 2026-02-01T00:00:00.000Z/);
    assert.equal(approvedKeyFile(approved.text, new Date())?.wasPending, false);
    assert.throws(() => keyFilePath(t.dir, '../../etc/passwd'), /not a portal key id/);
  } finally {
    t.cleanup();
  }
});

test('a developer value cannot break out of its comment line', () => {
  assert.match(developerProblem('a\nkind: key') ?? '', /control characters/);
  assert.match(developerProblem('') ?? '', /Enter your name/);
  assert.equal(developerProblem('Dana Developer <dana@example.com>'), null);
  // Even if it got through, the comment holds it as one JSON string.
  const text = renderKeyFile({
    keyId: 'portal-00000000',
    policy: 'p',
    entryName: 'e',
    developer: 'x\nis_inactive: false',
    certificatePem: leaf.certPem,
    requireApproval: true,
    requestedAt: new Date(),
  });
  assert.match(text, /# portal-developer: "x\\nis_inactive: false"/);
  assert.match(text, /^is_inactive: true$/m);
});

test('form: multipart with a file, and urlencoded', async () => {
  const fd = new FormData();
  fd.set('csrf', 't');
  fd.set('policy', 'gold');
  fd.set('developer', ' dev ');
  fd.set('certificate', '');
  fd.set('certificate_file', new Blob([leaf.certPem]), 'cert.pem');
  const req = new Request('http://x/', { method: 'POST', body: fd });
  const body = Buffer.from(await req.arrayBuffer());
  const form = await parseRequestForm(body, req.headers.get('content-type') ?? undefined);
  assert.equal(form.developer, 'dev');
  assert.equal(form.uploaded?.toString(), leaf.certPem);
  const url = await parseRequestForm(
    Buffer.from(new URLSearchParams({ policy: 'gold', certificate: leaf.certPem }).toString()),
    'application/x-www-form-urlencoded',
  );
  assert.equal(url.pasted, leaf.certPem);
  assert.equal(url.uploaded, null);
  await assert.rejects(parseRequestForm(Buffer.from('{}'), 'application/json'), /multipart\/form-data/);
});

test('SerialQueue runs tasks one at a time, in order, past failures', async () => {
  const q = new SerialQueue();
  const log: string[] = [];
  let running = 0;
  const task =
    (name: string, fail = false) =>
    async () => {
      running++;
      assert.equal(running, 1);
      await new Promise((r) => setTimeout(r, 5));
      log.push(name);
      running--;
      if (fail) throw new Error(name);
      return name;
    };
  const results = await Promise.allSettled([q.run(task('a')), q.run(task('b', true)), q.run(task('c'))]);
  assert.deepEqual(log, ['a', 'b', 'c']);
  assert.deepEqual(
    results.map((r) => r.status),
    ['fulfilled', 'rejected', 'fulfilled'],
  );
});

test('the directory lock excludes a second holder and recovers a lock left by a dead process', async () => {
  const t = tempDir('portal-lock');
  try {
    const lockDir = join(t.dir, 'keys', 'portal', '.lock');
    const order: string[] = [];
    let releaseFirst!: () => void;
    const first = withDirLock(t.dir, async () => {
      order.push('first in');
      await new Promise<void>((r) => (releaseFirst = r));
      order.push('first out');
    });
    await waitFor('the first holder', () => order.length === 1);
    const second = withDirLock(t.dir, async () => void order.push('second'));
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(order, ['first in'], 'the second waits');
    releaseFirst();
    await Promise.all([first, second]);
    assert.deepEqual(order, ['first in', 'first out', 'second']);
    assert.ok(!existsSync(lockDir));
    // A crashed holder: its pid is gone; the lock is taken over once it is a second old.
    mkdirSync(lockDir);
    writeFileSync(join(lockDir, 'owner'), '999999999');
    const old = new Date(Date.now() - 5_000);
    utimesSync(lockDir, old, old);
    assert.equal(await withDirLock(t.dir, async () => 'taken over', 10_000), 'taken over');
  } finally {
    t.cleanup();
  }
});
