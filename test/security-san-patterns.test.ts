// docs/security.md section 29: what a `*` in certificate_match admits. A `*` stands for one URI
// path segment of allowed characters (a SPIFFE ID's: letters, digits, ".", "-", "_"), one host
// label, one DNS label; never "?", "#", a percent-encoded "/" or "\", an empty or a dot segment.
// Before, a `*` in san_uri was "any run of characters but /": a CA that issued
// `spiffe://corp.example/ns/a?b` or `.../ns/a%2Fb` gave curl the key of `spiffe://corp.example/ns/*`.
// Leaves made by the openssl CLI (it writes these names as given), presented by curl.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { fieldPattern } from '../bundle/match-fields.ts';
import { curl, type EchoUpstream, type TestGateway, type TestPki } from './helpers/gateway-fixtures.ts';
import { closeGatewayTest, gatewayOnConfig, startPkiAndEcho } from './helpers/config-gateway.ts';
import { opensslIssue, opensslRootCa } from './helpers/openssl-pki.ts';

const LEAF = 'basicConstraints = critical, CA:false\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = clientAuth';

/** Leaf name -> its one subject alternative name (openssl's syntax; `#` is escaped in its config file). */
const LEAVES: Record<string, string> = {
  'spiffe-ok': 'URI:spiffe://corp.example/ns/pay',
  'spiffe-query': 'URI:spiffe://corp.example/ns/a?b',
  'spiffe-fragment': 'URI:spiffe://corp.example/ns/a#b',
  'spiffe-pct-slash': 'URI:spiffe://corp.example/ns/a%2Fb',
  'spiffe-pct-slash-lower': 'URI:spiffe://corp.example/ns/a%2fb',
  'spiffe-dotdot': 'URI:spiffe://corp.example/ns/..',
  'spiffe-colon': 'URI:spiffe://corp.example/ns/a:b',
  'web-ok': 'URI:https://apps.corp.example/svc/pay%20roll',
  'web-pct-backslash': 'URI:https://apps.corp.example/svc/a%5Cb',
  'web-pct-slash': 'URI:https://apps.corp.example/svc/a%2fb',
  'web-pct-dotdot': 'URI:https://apps.corp.example/svc/%2E%2E',
  'web-query': 'URI:https://apps.corp.example/svc/a?x=1',
  'web-host-ok': 'URI:https://eu.apps.corp.example/',
  'web-host-two-labels': 'URI:https://a.eu.apps.corp.example/',
  'dns-ok': 'DNS:api.corp.example',
  'dns-underscore': 'DNS:a_b.corp.example',
};

describe('certificate_match: `*` is one segment or label of allowed characters', () => {
  let pki: TestPki;
  let cleanup: () => void;
  let echo: EchoUpstream;
  let gw: TestGateway;
  let dir: string;

  before(async () => {
    ({ pki, cleanup, echo } = await startPkiAndEcho());
    dir = mkdtempSync(join(tmpdir(), 'mtlsgate-san-'));
    opensslRootCa(dir, 'Root', 30);
    let serial = 8192;
    for (const [name, san] of Object.entries(LEAVES))
      opensslIssue(dir, name, 'ca', `/CN=${name}`, `${LEAF}\nsubjectAltName = ${san.replaceAll('#', '\\#')}`, ++serial);
    const matchKey = (id: string, field: string) => `kind: key\nid: ${id}\ncertificate_match:\n  issuer: ca.pem\n  ${field}\naccess_rights:\n  dyn: {}\n---\n`;
    writeFileSync(
      join(dir, 'config.yaml'),
      [
        `kind: api\nid: dyn\nproxy:\n  listen_path: /dyn/\n  target_url: ${echo.url}\nauth:\n  use_certificate: true\n---\n`,
        matchKey('ns', 'san_uri: spiffe://corp.example/ns/*'),
        matchKey('web', 'san_uri: https://apps.corp.example/svc/*'),
        matchKey('web-host', 'san_uri: https://*.apps.corp.example/'),
        matchKey('dns', 'san_dns: "*.corp.example"'),
      ].join(''),
    );
    gw = await gatewayOnConfig(pki, dir);
  });

  after(async () => {
    await closeGatewayTest({ gw, echo, cleanup, dirs: [dir] });
  });

  /** The key curl with leaf `name` is, or the refusal's code. */
  const keyOf = async (name: string) => {
    const r = await curl(pki, gw.port, '/dyn/x', { client: { cert: join(dir, `${name}.pem`), key: join(dir, `${name}-key.pem`) } });
    return r.status === 200 ? `key ${gw.records.at(-1)?.key}` : `${r.status} ${r.json.code}`;
  };

  it('spiffe://corp.example/ns/* admits one SPIFFE path segment, not a query, fragment, %2F, dot segment or ":"', async () => {
    assert.equal(await keyOf('spiffe-ok'), 'key ns');
    for (const name of ['spiffe-query', 'spiffe-fragment', 'spiffe-pct-slash', 'spiffe-pct-slash-lower', 'spiffe-dotdot', 'spiffe-colon']) {
      assert.equal(await keyOf(name), '401 auth.cert_not_found', name);
    }
  });

  it('in any other URI, * is one path segment (no percent-encoded / \\ or .., no query) or one host label', async () => {
    assert.equal(await keyOf('web-ok'), 'key web', 'other percent-encodings are segment characters');
    for (const name of ['web-pct-backslash', 'web-pct-slash', 'web-pct-dotdot', 'web-query', 'web-host-two-labels']) {
      assert.equal(await keyOf(name), '401 auth.cert_not_found', name);
    }
    assert.equal(await keyOf('web-host-ok'), 'key web-host');
  });

  it('in san_dns, * is one DNS label (letters, digits, "-")', async () => {
    assert.equal(await keyOf('dns-ok'), 'key dns');
    assert.equal(await keyOf('dns-underscore'), '401 auth.cert_not_found');
  });
});

// An oracle written from the rules, not from the regex: split, decode, compare.
const SPIFFE_CHARS = /^[A-Za-z0-9._-]+$/;
const PCHAR_OR_PCT = /^(?:[A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2})+$/;
/** Bytes a percent-encoding in a `*` may not decode to: "/", "\", ".", "%", controls. */
const FORBIDDEN_DECODED = (byte: number) => byte === 0x2f || byte === 0x5c || byte === 0x2e || byte === 0x25 || byte < 0x20 || byte === 0x7f;

function isSpiffeSegment(s: string): boolean {
  return SPIFFE_CHARS.test(s) && s !== '.' && s !== '..';
}

function isUriSegment(s: string): boolean {
  if (!PCHAR_OR_PCT.test(s) || s === '.' || s === '..') return false;
  for (const m of s.matchAll(/%([0-9A-Fa-f]{2})/g)) if (FORBIDDEN_DECODED(Number.parseInt(m[1], 16))) return false;
  return true;
}

/** Strings over the characters that matter: segment characters, delimiters, "%" with hex. */
const pieces = fc.string({
  unit: fc.constantFrom('a', 'Z', '0', '.', '-', '_', '~', ':', '@', '!', '/', '?', '#', '%', '2', 'F', 'f', '5', 'C', 'E', '0', ' ', '\\', '\0'),
  maxLength: 8,
});

describe('property: what one `*` admits', () => {
  it('in a SPIFFE pattern, exactly one valid SPIFFE path segment', () => {
    const pattern = fieldPattern('san_uri', 'spiffe://corp.example/ns/*/sa/api');
    fc.assert(
      fc.property(pieces, (s) => pattern.test(`spiffe://corp.example/ns/${s}/sa/api`) === isSpiffeSegment(s)),
      { numRuns: 5000 },
    );
  });

  it('in another URI, exactly one path segment whose percent-encodings decode to no "/", "\\", ".", "%" or control', () => {
    const pattern = fieldPattern('san_uri', 'https://apps.corp.example/svc/*/v1');
    fc.assert(
      fc.property(pieces, (s) => pattern.test(`https://apps.corp.example/svc/${s}/v1`) === isUriSegment(s)),
      { numRuns: 5000 },
    );
  });

  it('in a DNS name, exactly one label of letters, digits and "-"', () => {
    const pattern = fieldPattern('san_dns', '*.corp.example');
    fc.assert(
      fc.property(pieces, (s) => pattern.test(`${s}.corp.example`) === /^[A-Za-z0-9-]+$/.test(s)),
      { numRuns: 5000 },
    );
  });
});
