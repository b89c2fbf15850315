// Pure pieces of the request path: routing and path normalisation, the ClientHello reader,
// snapshot build errors, and docs/errors.md staying in step with runtime/errors.ts.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { NEED_MORE, NOT_TLS, readClientHello } from '../runtime/client-hello.ts';
import { ERROR_TABLE } from '../runtime/errors.ts';
import { BAD_PATH, hostOf, routeRequest, type RouteTables } from '../runtime/route.ts';
import { buildSnapshot, hostNeedsCertificate } from '../runtime/snapshot.ts';
import { buildBundle } from './helpers/bundle-builder.ts';
import { captureClientHello } from './helpers/client-hello.ts';

/** The error table as Markdown rows (docs/errors.md holds exactly these; a test checks it). */
function errorTableMarkdown(): string {
  const cell = (text: string) => text.replaceAll('|', '\\|');
  // Outside backticks "<hex>" would read as an HTML tag.
  const message = (text: string) => cell(text).replaceAll('<', '&lt;').replaceAll('>', '&gt;');
  const lines = ['| code | status | message | how to fix |', '| --- | --- | --- | --- |'];
  for (const row of ERROR_TABLE) lines.push(`| \`${row.code}\` | ${row.status} | ${message(row.message)} | ${cell(row.fix)} |`);
  return lines.join('\n') + '\n';
}

describe('routing', () => {
  const tables: RouteTables<string> = {
    byHost: new Map([['h.test', new Map([['/payments/', 'h-payments']])]]),
    anyHost: new Map([
      ['/', 'root'],
      ['/payments/', 'payments'],
      ['/payments/v2/', 'payments-v2'],
      ['/admin/', 'admin'],
      ['/files/', 'files'],
    ]),
  };
  const route = (path: string, host = 'x.test') => {
    const r = routeRequest(tables, host, path);
    return r === BAD_PATH || r === undefined ? r : `${r.api} ${r.path}`;
  };

  it('longest "/"-segment prefix, with or without the trailing slash', () => {
    assert.equal(route('/payments/charges'), 'payments /payments/charges');
    assert.equal(route('/payments'), 'payments /payments');
    assert.equal(route('/payments/v2/x'), 'payments-v2 /payments/v2/x');
    assert.equal(route('/payments/v2'), 'payments-v2 /payments/v2');
    assert.equal(route('/paymentsX/y'), 'root /paymentsX/y');
    assert.equal(route('/'), 'root /');
  });

  it('exact domain first, then the domain-less APIs', () => {
    assert.equal(route('/payments/x', 'h.test'), 'h-payments /payments/x');
    assert.equal(route('/admin/x', 'h.test'), 'admin /admin/x');
  });

  it('no API: undefined', () => {
    const noRoot: RouteTables<string> = { byHost: new Map(), anyHost: new Map([['/a/', 'a']]) };
    assert.equal(routeRequest(noRoot, 'x', '/b/c'), undefined);
    assert.equal(routeRequest(noRoot, 'x', '/'), undefined);
  });

  it('dot segments inside the API are resolved', () => {
    assert.equal(route('/payments/./charges'), 'payments /payments/charges');
    assert.equal(route('/payments/a/../charges'), 'payments /payments/charges');
    assert.equal(route('/payments/a/%2E%2e/charges'), 'payments /payments/charges');
    assert.equal(route('/payments/a/..'), 'payments /payments/');
  });

  it('paths that leave their API or the root are refused', () => {
    for (const path of [
      '/..',
      '/../payments/x',
      '/payments/../admin/x',
      '/payments/%2e%2e/admin/',
      '/payments/v2/../x',
      '/files/..%2f..%2fadmin',
      '/payments/..%2fadmin',
      '/payments\\..\\admin',
      '/payments%2fv2/x',
      '/payments%5Cv2/x',
      'http://evil/',
      '*',
    ]) {
      assert.equal(route(path), BAD_PATH, path);
    }
  });

  it('encoded separators are refused wherever they are (issue 10: Envoy REJECT); other escapes are kept, hex upper-cased', () => {
    assert.equal(route('/files/a%2Fb'), BAD_PATH);
    assert.equal(route('/files/a%5cb'), BAD_PATH);
    assert.equal(route('/files/100%25'), 'files /files/100%25');
    assert.equal(route('/files/%e2%82%ac'), 'files /files/%E2%82%AC');
  });

  it('hostOf: lower case, no port, IPv6 literal kept, SNI when Host is absent', () => {
    assert.equal(hostOf('Pay.Example.TEST:8443', ''), 'pay.example.test');
    assert.equal(hostOf('[::1]:8443', ''), '[::1]');
    assert.equal(hostOf(undefined, 'sni.test'), 'sni.test');
    assert.equal(hostOf('pay.example.test.:443', ''), 'pay.example.test', 'the root dot names the same host');
    assert.equal(hostOf(undefined, 'sni.test.'), 'sni.test');
  });
});

describe('ClientHello reader', () => {
  it('reads the SNI of a real ClientHello, byte by byte', async () => {
    const hello = await captureClientHello('Pay.Example.Test');
    for (let n = 0; n < hello.length; n++) assert.equal(readClientHello(hello.subarray(0, n)), NEED_MORE, `prefix ${n}`);
    assert.equal(readClientHello(hello), 'pay.example.test');
  });

  it('no SNI: the empty host', async () => {
    assert.equal(readClientHello(await captureClientHello(undefined)), '');
  });

  it('a ClientHello split over two records', async () => {
    const hello = await captureClientHello('split.test');
    const body = hello.subarray(5);
    const cut = 40;
    const record = (fragment: Buffer) => Buffer.concat([Buffer.from([22, 3, 1, fragment.length >> 8, fragment.length & 255]), fragment]);
    const split = Buffer.concat([record(body.subarray(0, cut)), record(body.subarray(cut))]);
    assert.equal(readClientHello(split.subarray(0, 5 + cut + 3)), NEED_MORE);
    assert.equal(readClientHello(split), 'split.test');
  });

  it('not TLS, or malformed: NOT_TLS', () => {
    assert.equal(readClientHello(Buffer.from('GET / HTTP/1.1\r\n\r\n')), NOT_TLS);
    assert.equal(readClientHello(Buffer.from([22, 3, 1, 0, 4, 2, 0, 0, 0])), NOT_TLS, 'a ServerHello');
    assert.equal(readClientHello(Buffer.from([22, 3, 1, 0, 6, 1, 0, 0, 2, 3, 3])), NOT_TLS, 'truncated body');
    assert.equal(readClientHello(Buffer.from([22, 3, 1, 0xff, 0xff])), NOT_TLS, 'oversized record');
  });
});

describe('snapshot', () => {
  const target = 'http://127.0.0.1:9';

  it('per-host certificate request: a host needs one when one of its APIs uses it', () => {
    const s = buildSnapshot(
      buildBundle([
        { id: 'pay', domain: 'pay.test', listen_path: '/', target_url: target, use_certificate: true },
        { id: 'open', domain: 'open.test', listen_path: '/', target_url: target, use_keyless: true },
        { id: 'any', listen_path: '/any/', target_url: target, use_keyless: true },
      ]),
    );
    assert.equal(hostNeedsCertificate(s, 'pay.test'), true);
    assert.equal(hostNeedsCertificate(s, 'open.test'), false);
    assert.equal(hostNeedsCertificate(s, ''), false);
    const withAnyHost = buildSnapshot(
      buildBundle([
        { id: 'open', domain: 'open.test', listen_path: '/', target_url: target, use_keyless: true },
        { id: 'any', listen_path: '/m/', target_url: target, use_keyless: true, use_mutual_tls_auth: true, client_certificates: ['a'.repeat(64)] },
      ]),
    );
    assert.equal(hostNeedsCertificate(withAnyHost, 'open.test'), true, 'domain-less APIs answer on every host');
    assert.equal(hostNeedsCertificate(withAnyHost, 'other.test'), true);
  });

  it('refuses content it cannot use, naming the record', () => {
    const badRegex = buildBundle(
      [{ id: 'a', listen_path: '/a/', target_url: target }],
      [{ id: 'k', token_sha256: 'b'.repeat(64), access_rights: { a: { allowed_urls: [{ url: '^/(unclosed', methods: [] }] } } }],
    );
    assert.throws(
      () => buildSnapshot(badRegex),
      /key k: access_rights\.a\.allowed_urls\[0\]\.url "\^\/\(unclosed" cannot run in RE2 \(linear time\): missing closing \)/,
    );
    const badTarget = buildBundle([{ id: 'a', listen_path: '/a/', target_url: 'ftp://x/' }]);
    assert.throws(() => buildSnapshot(badTarget), /api a: target_url "ftp:\/\/x\/" must be http:\/\/ or https:\/\//);
    const content = buildBundle([{ id: 'a', listen_path: '/a/', target_url: target }]);
    const fp = 'c'.repeat(64);
    content.content.cas[fp] = { pem: '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n', subject: 'CN=broken', apis: ['a'] };
    content.content.apis.a.client_cas = [fp];
    assert.throws(() => buildSnapshot(content), /ca c{64} \(CN=broken\) used by api a: its PEM is not a readable certificate/);
  });
});

describe('docs/errors.md', () => {
  it('holds the error table of runtime/errors.ts, row for row', () => {
    const doc = readFileSync(join(import.meta.dirname, '..', 'docs', 'errors.md'), 'utf8');
    assert.ok(doc.includes(errorTableMarkdown()), 'docs/errors.md differs from errorTableMarkdown(): regenerate its table from runtime/errors.ts');
  });

  it('every code is unique and every row says how to fix it', () => {
    assert.equal(new Set(ERROR_TABLE.map((r) => r.code)).size, ERROR_TABLE.length);
    for (const row of ERROR_TABLE) assert.ok(row.fix.length > 20, row.code);
  });
});
