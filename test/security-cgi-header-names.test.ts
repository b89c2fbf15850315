// The gateway's own headers spelt with "_" (docs/security.md section 40). CGI, WSGI, PHP and IIS
// server variables name a header HTTP_X_FORWARDED_CLIENT_CERT whether it came as
// "X-Forwarded-Client-Cert" or "X_Forwarded_Client_Cert", and join or pick among the copies. The
// gateway removed the client's X-Forwarded-Client-Cert, X-Forwarded-For, X-Real-IP and key id
// header, but not their "_" spellings: behind Python's own WSGI server the client's value was the
// gateway's header. The upstream here is that server (wsgiref, Python's standard library),
// answering with the HTTP_ variables it hands an application; the client is curl.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { underscoreVariants } from '../runtime/proxy-headers.ts';
import { buildBundle } from './helpers/bundle-builder.ts';
import { closeGatewayTest } from './helpers/config-gateway.ts';
import { curl, makePki, startTestGateway, type TestGateway, type TestPki } from './helpers/gateway-fixtures.ts';

/** Python's reference WSGI server; the application answers with the request's HTTP_ variables as JSON. */
const WSGI_ECHO = `
import json
from wsgiref.simple_server import make_server, WSGIRequestHandler
class Quiet(WSGIRequestHandler):
    def log_message(self, *args): pass
def app(environ, start):
    body = json.dumps({k: v for k, v in environ.items() if k.startswith('HTTP_')}).encode()
    start('200 OK', [('Content-Type', 'application/json'), ('Content-Length', str(len(body)))])
    return [body]
server = make_server('127.0.0.1', 0, app, handler_class=Quiet)
print(server.server_port, flush=True)
server.serve_forever()
`;

let pki: TestPki;
let cleanup: () => void;
let wsgi: ChildProcess;
let gw: TestGateway;

before(async () => {
  ({ pki, cleanup } = await makePki());
  const script = join(pki.dir, 'wsgi_echo.py');
  writeFileSync(script, WSGI_ECHO);
  wsgi = spawn('python3', [script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    wsgi.once('error', reject);
    wsgi.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
  });
  const target = `http://127.0.0.1:${port}`;
  gw = await startTestGateway(
    pki,
    buildBundle(
      [
        { id: 'open', listen_path: '/', target_url: target, use_keyless: true },
        {
          id: 'partners',
          listen_path: '/partners/',
          target_url: target,
          use_certificate: true,
          forward_client_cert: { key_id_header: 'x-key-id', rfc9440: false, xfcc: ['Hash'] },
        },
      ],
      [{ id: 'alice', certificates: [pki.clients.alice.fingerprint], access_rights: { partners: { allowed_urls: null } } }],
    ),
  );
});
after(async () => {
  wsgi?.kill();
  await closeGatewayTest({ gw, cleanup });
});

/** What an attacker without a certificate of the API's writes: the gateway's headers, spelt with "_". */
const SPOOFED = {
  X_Forwarded_Client_Cert: 'Hash=0000;Subject="CN=admin"',
  'X-Forwarded_For': '203.0.113.66',
  X_Real_IP: '203.0.113.66',
  Client_Cert: ':AAAA:',
  X_Original_URL: '/admin/delete',
  X_Key_Id: 'admin',
};

test('the gateway\'s headers spelt with "_" never reach a WSGI upstream as its own (HTTP/1.1 and HTTP/2)', async () => {
  for (const http of ['--http1.1', '--http2']) {
    const open = await curl(pki, gw.port, '/x', { extra: [http], headers: SPOOFED });
    assert.equal(open.status, 200, open.body);
    const seen = open.json as Record<string, string>;
    assert.equal(seen.HTTP_X_FORWARDED_CLIENT_CERT, undefined, http);
    assert.equal(seen.HTTP_X_FORWARDED_FOR, '127.0.0.1', http);
    assert.equal(seen.HTTP_X_REAL_IP, undefined, http);
    assert.equal(seen.HTTP_CLIENT_CERT, undefined, http);
    assert.equal(seen.HTTP_X_ORIGINAL_URL, undefined, http);
    assert.equal(seen.HTTP_X_KEY_ID, undefined, http);
    // With a certificate: the gateway's values, alone.
    const partners = await curl(pki, gw.port, '/partners/x', { client: 'alice', extra: [http], headers: SPOOFED });
    assert.equal(partners.status, 200, partners.body);
    const mine = partners.json as Record<string, string>;
    assert.equal(mine.HTTP_X_FORWARDED_CLIENT_CERT, `Hash=${pki.clients.alice.fingerprint}`, http);
    assert.equal(mine.HTTP_X_KEY_ID, 'alice', http);
    assert.equal(mine.HTTP_X_FORWARDED_FOR, '127.0.0.1', http);
  }
});

test('held: other headers with "_" pass as sent', async () => {
  const r = await curl(pki, gw.port, '/x', { headers: { X_Request_Id: 'abc', My_Header: 'v' } });
  const seen = r.json as Record<string, string>;
  assert.equal(seen.HTTP_X_REQUEST_ID, 'abc');
  assert.equal(seen.HTTP_MY_HEADER, 'v');
});

test('underscoreVariants: every other spelling with "-" and "_", the name itself left out', () => {
  assert.deepEqual(underscoreVariants(['x-key-id']).sort(), ['x-key_id', 'x_key-id', 'x_key_id']);
  assert.deepEqual(underscoreVariants(['x_key_id']).sort(), ['x-key-id', 'x-key_id', 'x_key-id']);
  assert.deepEqual(underscoreVariants(['host']), []);
});
