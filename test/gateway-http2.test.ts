// HTTP/2, gRPC, WebSocket and per-host server certificates, with real clients: curl --http2,
// @grpc/grpc-js (client and server), ws, and openssl s_client -servername.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { WebSocket, WebSocketServer } from 'ws';
import { createServerCert } from '../cli/pki.ts';
import { buildBundle, sha256Hex } from './helpers/bundle-builder.ts';
import { closeGatewayTest, keylessOpenBundle, startGatewayTest, startPkiAndEcho } from './helpers/config-gateway.ts';
import { curl, makePki, startTestGateway, type EchoUpstream, type TestGateway, type TestPki } from './helpers/gateway-fixtures.ts';
import { waitFor } from './helpers/ops-fixtures.ts';

const PROTO = `syntax = "proto3";
package demo;
service Greeter {
  rpc Hello (HelloRequest) returns (HelloReply);
  rpc Count (HelloRequest) returns (stream HelloReply);
}
message HelloRequest { string name = 1; }
message HelloReply { string message = 1; }
`;

describe('HTTP/2 on the same port, same stages', () => {
  let pki: TestPki;
  let cleanup: () => void;
  let echo: EchoUpstream;
  let gw: TestGateway;
  before(async () => {
    ({ pki, cleanup, echo, gw } = await startGatewayTest(({ pki, echo }) =>
      buildBundle(
        [
          { id: 'open', listen_path: '/open/', target_url: echo.url, use_keyless: true },
          {
            id: 'pinned',
            listen_path: '/pinned/',
            target_url: echo.url,
            use_keyless: true,
            use_mutual_tls_auth: true,
            client_certificates: [pki.clients['partner-a'].fingerprint],
          },
          { id: 'tokens', listen_path: '/tokens/', target_url: echo.url },
        ],
        [{ id: 'tok', token_sha256: sha256Hex('tok-token'), access_rights: { tokens: { allowed_urls: null } } }],
      ),
    ));
  });
  after(() => closeGatewayTest({ gw, echo, cleanup }));

  const cases = [
    { path: '/open/a?x=1', opts: {}, status: 200 },
    { path: '/pinned/a', opts: { client: 'partner-a' }, status: 200 },
    { path: '/pinned/a', opts: { client: 'bob' }, status: 403, code: 'mtls.cert_not_allowed' },
    { path: '/pinned/a', opts: {}, status: 403, code: 'mtls.cert_required' },
    { path: '/tokens/a', opts: {}, status: 401, code: 'auth.auth_field_missing' },
    { path: '/tokens/a', opts: { headers: { authorization: 'Bearer tok-token' } }, status: 200 },
    { path: '/nowhere', opts: {}, status: 404, code: 'route.not_found' },
  ] as const;

  for (const c of cases) {
    it(`${c.path} ${JSON.stringify(c.opts)}: ${c.status} over HTTP/2 and HTTP/1.1, same record`, async () => {
      const h2 = await curl(pki, gw.port, c.path, { ...c.opts, extra: ['--http2', '-w', '%{http_version}\\n'] } as never);
      const h1 = await curl(pki, gw.port, c.path, { ...c.opts, extra: ['--http1.1'] } as never);
      assert.equal(h2.status, c.status, h2.body);
      assert.equal(h1.status, c.status, h1.body);
      assert.match(h2.body, /\n?2\n$/, 'curl spoke HTTP/2');
      if ('code' in c) {
        assert.equal(h1.json.code, c.code);
        assert.equal(JSON.parse(h2.body.slice(0, h2.body.lastIndexOf('}') + 1)).code, c.code);
      } else {
        const upstreamSaw = JSON.parse(h2.body.slice(0, h2.body.lastIndexOf('}') + 1));
        assert.equal(upstreamSaw.headers['x-forwarded-host'], `localhost:${gw.port}`);
        assert.ok(!Object.keys(upstreamSaw.headers).some((n) => n.startsWith(':')), 'no pseudo-header reaches an HTTP/1.1 upstream');
      }
      await waitFor('both records', () => gw.records.filter((r) => r.path === c.path).length >= 2, 15_000);
      const [a, b] = gw.records.filter((r) => r.path === c.path).slice(-2);
      assert.deepEqual({ ...a, durationMs: 0, remote: '' }, { ...b, durationMs: 0, remote: '' });
    });
  }

  it('a request body reaches the upstream over HTTP/2', async () => {
    const r = await curl(pki, gw.port, '/open/post', { extra: ['--http2'], method: 'POST', data: 'hello h2' } as never);
    assert.equal(r.status, 200);
    assert.equal(r.json.body, 'hello h2');
  });
});

describe('gRPC through the gateway (proxy.http2)', () => {
  let pki: TestPki;
  let cleanup: () => void;
  let server: grpc.Server;
  let gw: TestGateway;
  // biome-ignore lint/suspicious/noExplicitAny: grpc-js builds the client class at run time
  let Greeter: any;
  before(async () => {
    ({ pki, cleanup } = await makePki());
    const protoFile = pki.file('greeter.proto', PROTO);
    const def = grpc.loadPackageDefinition(protoLoader.loadSync(protoFile));
    Greeter = (def.demo as grpc.GrpcObject).Greeter;
    server = new grpc.Server();
    server.addService(Greeter.service, {
      Hello: (call: grpc.ServerUnaryCall<{ name: string }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        const trailer = new grpc.Metadata();
        trailer.set('x-served-by', 'upstream');
        cb(null, { message: `hello ${call.request.name} (${call.metadata.get('x-forwarded-proto')[0]})` }, trailer);
      },
      Count: (call: grpc.ServerWritableStream<{ name: string }, unknown>) => {
        for (let i = 1; i <= 3; i++) call.write({ message: `${call.request.name} ${i}` });
        call.end();
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    const target = `http://127.0.0.1:${port}`;
    gw = await startTestGateway(
      pki,
      buildBundle(
        [
          {
            id: 'grpc',
            listen_path: '/demo.Greeter/',
            strip_listen_path: false,
            target_url: target,
            upstream_http2: true,
            use_keyless: true,
            use_mutual_tls_auth: true,
            client_certificates: [pki.clients.alice.fingerprint],
          },
          { id: 'grpc-token', listen_path: '/demo.Tokened/', target_url: target, upstream_http2: true },
        ],
        [],
      ),
    );
  });
  after(async () => {
    await gw.close();
    server.forceShutdown();
    cleanup();
  });

  function client(name: 'alice' | 'bob') {
    const creds = grpc.credentials.createSsl(Buffer.from(pki.ca.certPem), Buffer.from(pki.clients[name].keyPem), Buffer.from(pki.clients[name].certPem));
    return new Greeter(`localhost:${gw.port}`, creds);
  }

  it('a unary call passes, with its trailers', async () => {
    const c = client('alice');
    let trailers: grpc.Metadata | null = null;
    const reply = await new Promise<{ message: string }>((resolve, reject) => {
      const call = c.Hello({ name: 'alice' }, (err: Error | null, r: { message: string }) => (err ? reject(err) : resolve(r)));
      call.on('status', (s: grpc.StatusObject) => (trailers = s.metadata));
    });
    assert.equal(reply.message, 'hello alice (https)');
    await waitFor('status', () => trailers !== null, 15_000);
    assert.deepEqual(trailers!.get('x-served-by'), ['upstream']);
    c.close();
  });

  it('a server-streaming call passes', async () => {
    const c = client('alice');
    const got: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const call = c.Count({ name: 'n' });
      call.on('data', (m: { message: string }) => got.push(m.message));
      call.on('end', resolve);
      call.on('error', reject);
    });
    assert.deepEqual(got, ['n 1', 'n 2', 'n 3']);
    c.close();
  });

  it('refusals are gRPC-native: PERMISSION_DENIED, UNAUTHENTICATED, UNIMPLEMENTED', async () => {
    const call = (c: ReturnType<typeof client>, method: string) =>
      new Promise<grpc.ServiceError>((resolve) =>
        c.makeUnaryRequest(
          method,
          (x: unknown) => Buffer.from(JSON.stringify(x)),
          (b: Buffer) => b,
          {},
          (err: grpc.ServiceError) => resolve(err),
        ),
      );
    const bob = client('bob');
    const denied = await call(bob, '/demo.Greeter/Hello');
    assert.equal(denied.code, grpc.status.PERMISSION_DENIED);
    assert.match(denied.details, /Certificate with SHA256 [0-9a-f]{64} not allowed/);
    const unauthenticated = await call(bob, '/demo.Tokened/Hello');
    assert.equal(unauthenticated.code, grpc.status.UNAUTHENTICATED);
    assert.equal(unauthenticated.details, 'Authorization field missing');
    const missing = await call(bob, '/demo.Nowhere/Hello');
    assert.equal(missing.code, grpc.status.UNIMPLEMENTED);
    bob.close();
    const record = gw.records.find((r) => r.path === '/demo.Greeter/Hello' && r.status === 403);
    assert.equal(record?.code, 'mtls.cert_not_allowed');
  });
});

describe('WebSocket through the gateway', () => {
  let pki: TestPki;
  let cleanup: () => void;
  let wss: WebSocketServer;
  let upstreamUrl: string;
  let gw: TestGateway;
  const bundleWith = (pins: string[]) =>
    buildBundle([{ id: 'ws', listen_path: '/ws/', target_url: upstreamUrl, use_keyless: true, use_mutual_tls_auth: true, client_certificates: pins }], []);

  before(async () => {
    ({ pki, cleanup } = await makePki());
    wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise((r) => wss.once('listening', r));
    wss.on('connection', (socket, req) => {
      socket.send(`path ${req.url} cert ${req.headers['x-forwarded-client-cert'] === undefined ? 'none' : 'forwarded'}`);
      socket.on('message', (m) => socket.send(`echo ${m}`));
    });
    upstreamUrl = `http://127.0.0.1:${(wss.address() as AddressInfo).port}`;
    gw = await startTestGateway(pki, bundleWith([pki.clients.alice.fingerprint]));
  });
  after(async () => {
    await gw.close();
    wss.close();
    cleanup();
  });

  const open = (name: 'alice' | 'bob') =>
    new WebSocket(`wss://localhost:${gw.port}/ws/chat`, { ca: pki.ca.certPem, cert: pki.clients[name].certPem, key: pki.clients[name].keyPem });

  it('an admitted upgrade is proxied both ways and logged with status 101', async () => {
    const ws = open('alice');
    const got: string[] = [];
    ws.on('message', (m) => got.push(String(m)));
    await new Promise((r) => ws.once('open', r));
    ws.send('ping');
    await waitFor('two messages', () => got.length >= 2, 15_000);
    assert.deepEqual(got, ['path /chat cert none', 'echo ping']);
    ws.close();
    await waitFor('the record', () => gw.records.some((r) => r.path === '/ws/chat' && r.status === 101), 15_000);
  });

  it('a refused upgrade gets the error row before any upgrade', async () => {
    const ws = open('bob');
    const status = await new Promise<number>((resolve) => ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)));
    assert.equal(status, 403);
  });

  it('an open WebSocket whose certificate a reload removes is closed', async () => {
    const ws = open('alice');
    await new Promise((r) => ws.once('open', r));
    let closed = false;
    ws.once('close', () => (closed = true));
    assert.equal(gw.gateway.openWebSockets(), 1);
    gw.use(bundleWith([pki.clients['partner-a'].fingerprint]));
    await waitFor('the tunnel to close', () => closed, 15_000);
    assert.equal(gw.gateway.openWebSockets(), 0);
    gw.use(bundleWith([pki.clients.alice.fingerprint]));
  });
});

describe('one server certificate per host (SNI)', () => {
  it('serves the pair whose SAN matches the SNI (wildcards as TLS matches them), the first otherwise', async () => {
    const { pki, cleanup, echo } = await startPkiAndEcho();
    const wild = await createServerCert(pki.ca, { dns: ['*.wild.test'] });
    const gw = await startTestGateway(pki, keylessOpenBundle(echo), {
      moreCertificates: [{ cert: wild.certPem, key: wild.keyPem }],
    });
    const sanFor = (servername: string) =>
      new Promise<string>((resolve, reject) => {
        const sh = `openssl s_client -connect 127.0.0.1:${gw.port} -servername ${servername} </dev/null 2>/dev/null | openssl x509 -noout -ext subjectAltName`;
        execFile('sh', ['-c', sh], (err, stdout) => (err ? reject(err) : resolve(stdout)));
      });
    try {
      assert.match(await sanFor('a.wild.test'), /DNS:\*\.wild\.test/);
      assert.match(await sanFor('pay.example.test'), /DNS:pay\.example\.test/);
      assert.match(await sanFor('a.b.wild.test'), /DNS:localhost/, 'a wildcard covers one label');
      assert.match(await sanFor('unknown.test'), /DNS:localhost/);
      writeFileSync(pki.file('unused', ''), '');
    } finally {
      await closeGatewayTest({ gw, echo, cleanup });
    }
  });
});
