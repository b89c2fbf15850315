// Which names a --tls-cert serves (runtime/tls-servers.ts `serverNames`): its DNS subjectAltNames
// as the DER holds them, read by cert/'s one SAN reader. Before, Node's `subjectAltName` string was
// split on ", ": Node quotes and escapes a name holding ",", a quote or a backslash, so such a
// name came back as `"api.example\u002c dns:..."`, quotes and escape included; and the common
// name was read from Node's escaped subject (`gateway\, inc.`).
// Certificates made by the openssl CLI, which writes the names as given.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { serverNames } from '../runtime/tls-servers.ts';
import { opensslSelfSigned } from './helpers/openssl-pki.ts';

const dir = mkdtempSync(join(tmpdir(), 'mtlsgate-server-names-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('a subjectAltName holding ", " is one name, as written; other kinds are not DNS names', () => {
  const sans = ['DNS.1 = api.example, DNS:evil.example', 'DNS.3 = WWW.Example', 'URI.1 = https://x.example/a, DNS:uri.example', 'IP.1 = 10.0.0.5'];
  const cert = opensslSelfSigned(dir, 'odd', 'fallback.example', `subjectAltName = @alt\n[alt]\n${sans.join('\n')}`);
  assert.deepEqual(serverNames(cert.certPem), ['api.example, dns:evil.example', 'www.example']);
});

test('no DNS subjectAltName: the common name, a comma and all', () => {
  const cert = opensslSelfSigned(dir, 'cn-only', 'Gateway, Inc.', 'subjectAltName = IP:10.0.0.5');
  assert.deepEqual(serverNames(cert.certPem), ['gateway, inc.']);
  const plain = opensslSelfSigned(dir, 'plain', 'api.example', 'basicConstraints = CA:false');
  assert.deepEqual(serverNames(plain.certPem), ['api.example']);
});
