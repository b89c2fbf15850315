// An HTTP/2 connection outlives a reload (docs/security.md section 51): the certificate was
// checked in its handshake, but every new stream on it is decided against the bundle current
// when the stream opens. node:http2 holding one session across the reload, curl's HTTP/1.1
// keep-alive alongside for comparison.
import assert from 'node:assert/strict';
import { type ClientHttp2Session, connect } from 'node:http2';
import { after, before, test } from 'node:test';
import { buildBundle } from './helpers/bundle-builder.ts';
import { closeGatewayTest, startPkiAndEcho } from './helpers/config-gateway.ts';
import { type EchoUpstream, startTestGateway, type TestGateway, type TestPki } from './helpers/gateway-fixtures.ts';
import { http2On } from './helpers/one-request.ts';

let pki: TestPki;
let cleanup: () => void;
let echo: EchoUpstream;
let gw: TestGateway;

/** One API keyed by certificate; the keys named hold their certificate. */
const bundle = (keys: Array<'alice' | 'bob'>) =>
  buildBundle(
    [{ id: 'svc', listen_path: '/svc/', target_url: echo.url, use_certificate: true }],
    keys.map((name) => ({ id: name, certificates: [pki.clients[name].fingerprint], access_rights: { svc: { allowed_urls: null } } })),
  );

before(async () => {
  ({ pki, cleanup, echo } = await startPkiAndEcho());
  gw = await startTestGateway(pki, bundle(['alice', 'bob']));
});
after(() => closeGatewayTest({ gw, echo, cleanup }));

function session(name: 'alice' | 'bob'): ClientHttp2Session {
  const s = connect(`https://localhost:${gw.port}`, { ca: pki.ca.certPem, cert: pki.clients[name].certPem, key: pki.clients[name].keyPem });
  s.on('error', () => {});
  return s;
}

test('held: a new stream on an HTTP/2 connection opened before a reload that removes its key is refused; the other key is still served on its own open connection', async () => {
  const alice = session('alice');
  const bob = session('bob');
  try {
    assert.equal((await http2On(alice, { ':path': '/svc/a' })).status, 200);
    assert.equal((await http2On(bob, { ':path': '/svc/b' })).status, 200);
    gw.use(bundle(['bob']));
    const refused = await http2On(alice, { ':path': '/svc/a' });
    assert.equal(refused.status, 401, refused.body);
    assert.equal(JSON.parse(refused.body).code, 'auth.cert_not_found');
    assert.equal(alice.destroyed, false, 'the same connection');
    assert.equal((await http2On(bob, { ':path': '/svc/b' })).status, 200);
    // And back: a reload that gives the key back lets the same connection in again.
    gw.use(bundle(['alice', 'bob']));
    assert.equal((await http2On(alice, { ':path': '/svc/a' })).status, 200);
  } finally {
    alice.close();
    bob.close();
  }
});
