// gRPC through the gateway, beyond unary and server-streaming (test/gateway-http2.test.ts):
// client-streaming and bidirectional calls, and the gRPC statuses of the refusals a call can
// meet on its way: 8 RESOURCE_EXHAUSTED for a rate limit and a quota, 14 UNAVAILABLE for a
// dead upstream (502) and an upstream timeout (504), each with its message in grpc-message and
// its code in x-mtlsgate-code. @grpc/grpc-js client and server, real mTLS to the gateway.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { createLimiter } from '../runtime/limits/index.ts';
import { buildBundle, sha256Hex } from './helpers/bundle-builder.ts';
import { deadPort, makePki, startTestGateway, type TestGateway, type TestPki } from './helpers/gateway-fixtures.ts';

// One service per API the calls go through (a gRPC path is /package.Service/Method).
const PROTO = `syntax = "proto3";
package demo;
service Greeter {
  rpc Hello (HelloRequest) returns (HelloReply);
  rpc Collect (stream HelloRequest) returns (HelloReply);
  rpc Chat (stream HelloRequest) returns (stream HelloReply);
}
service Rated { rpc Hello (HelloRequest) returns (HelloReply); }
service Metered { rpc Hello (HelloRequest) returns (HelloReply); }
service Dead { rpc Hello (HelloRequest) returns (HelloReply); }
service Slow { rpc Hello (HelloRequest) returns (HelloReply); }
message HelloRequest { string name = 1; }
message HelloReply { string message = 1; }
`;

type Reply = { message: string };

describe('gRPC calls through the gateway: streaming both ways, refusal statuses', () => {
  let pki: TestPki;
  let cleanup: () => void;
  let server: grpc.Server;
  let gw: TestGateway;
  // biome-ignore lint/suspicious/noExplicitAny: grpc-js builds the client classes at run time
  let demo: Record<string, any>;
  const slowTimers = new Set<NodeJS.Timeout>();

  before(async () => {
    ({ pki, cleanup } = await makePki());
    demo = grpc.loadPackageDefinition(protoLoader.loadSync(pki.file('calls.proto', PROTO))).demo as Record<string, unknown>;
    server = new grpc.Server();
    const hello = (call: grpc.ServerUnaryCall<{ name: string }, Reply>, cb: grpc.sendUnaryData<Reply>) => cb(null, { message: `hello ${call.request.name}` });
    server.addService(demo.Greeter.service, {
      Hello: hello,
      Collect: (call: grpc.ServerReadableStream<{ name: string }, Reply>, cb: grpc.sendUnaryData<Reply>) => {
        const names: string[] = [];
        call.on('data', (m: { name: string }) => names.push(m.name));
        call.on('end', () => cb(null, { message: `got ${names.join(',')}` }));
      },
      Chat: (call: grpc.ServerDuplexStream<{ name: string }, Reply>) => {
        call.on('data', (m: { name: string }) => call.write({ message: `echo ${m.name}` }));
        call.on('end', () => call.end());
      },
    });
    server.addService(demo.Rated.service, { Hello: hello });
    server.addService(demo.Metered.service, { Hello: hello });
    server.addService(demo.Slow.service, {
      Hello: (call: grpc.ServerUnaryCall<{ name: string }, Reply>, cb: grpc.sendUnaryData<Reply>) => {
        const t = setTimeout(() => hello(call, cb), 5_000);
        slowTimers.add(t);
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    const target = `http://127.0.0.1:${port}`;
    const grpcApi = (id: string, service: string, over: Record<string, unknown> = {}) => ({
      id,
      listen_path: `/demo.${service}/`,
      strip_listen_path: false,
      target_url: target,
      upstream_http2: true,
      ...over,
    });
    const all = { allowed_urls: null };
    gw = await startTestGateway(
      pki,
      buildBundle(
        [
          grpcApi('greeter', 'Greeter', { use_keyless: true, use_mutual_tls_auth: true, client_certificates: [pki.clients.alice.fingerprint] }),
          grpcApi('rated', 'Rated'),
          grpcApi('metered', 'Metered'),
          grpcApi('dead', 'Dead', { use_keyless: true, target_url: `http://127.0.0.1:${await deadPort()}` }),
          grpcApi('slow', 'Slow', { use_keyless: true }),
        ],
        [
          { id: 'rated', token_sha256: sha256Hex('rated-token'), rate: { rate: 1, per: 3600 }, access_rights: { rated: all } },
          { id: 'metered', token_sha256: sha256Hex('metered-token'), quota: { max: 1, renewal: 3600 }, access_rights: { metered: all } },
        ],
      ),
      { limiter: createLimiter(), upstreamTimeoutMs: 1_000 },
    );
  });
  after(async () => {
    for (const t of slowTimers) clearTimeout(t);
    await gw.close();
    server.forceShutdown();
    cleanup();
  });

  function client(service: string) {
    const alice = pki.clients.alice;
    const creds = grpc.credentials.createSsl(Buffer.from(pki.ca.certPem), Buffer.from(alice.keyPem), Buffer.from(alice.certPem));
    return new demo[service](`localhost:${gw.port}`, creds);
  }

  it('a client-streaming call passes: every message reaches the upstream, its one answer comes back', async () => {
    const c = client('Greeter');
    const reply = await new Promise<Reply>((resolve, reject) => {
      const call = c.Collect((err: Error | null, r: Reply) => (err ? reject(err) : resolve(r)));
      for (const name of ['a', 'b', 'c']) call.write({ name });
      call.end();
    });
    assert.equal(reply.message, 'got a,b,c');
    c.close();
  });

  it('a bidirectional call passes: each message is answered while the call is open', async () => {
    const c = client('Greeter');
    const call = c.Chat();
    const got: string[] = [];
    const ended = new Promise<void>((resolve, reject) => {
      call.on('end', resolve);
      call.on('error', reject);
    });
    // One message at a time, each answer awaited: the call is interactive through the gateway.
    for (const name of ['x', 'y', 'z']) {
      const answered = new Promise<void>((resolve) => call.once('data', (m: Reply) => resolve(void got.push(m.message))));
      call.write({ name });
      await answered;
    }
    call.end();
    await ended;
    assert.deepEqual(got, ['echo x', 'echo y', 'echo z']);
    c.close();
  });

  /** A unary call's outcome: the error (or null) and the status trailers. */
  function unary(service: string, token?: string): Promise<{ err: grpc.ServiceError | null; status: grpc.StatusObject }> {
    const c = client(service);
    const metadata = new grpc.Metadata();
    if (token !== undefined) metadata.set('authorization', `Bearer ${token}`);
    return new Promise((resolve) => {
      let err: grpc.ServiceError | null = null;
      const call = c.Hello({ name: 'n' }, metadata, (e: grpc.ServiceError | null) => (err = e));
      call.on('status', (status: grpc.StatusObject) => {
        c.close();
        setImmediate(() => resolve({ err, status }));
      });
    });
  }

  const refusals = [
    {
      what: 'a rate limit (429)',
      service: 'Rated',
      token: 'rated-token',
      code: 'limit.rate',
      status: grpc.status.RESOURCE_EXHAUSTED,
      message: 'Rate limit exceeded',
    },
    {
      what: 'a quota (403)',
      service: 'Metered',
      token: 'metered-token',
      code: 'limit.quota',
      status: grpc.status.RESOURCE_EXHAUSTED,
      message: 'Quota exceeded',
    },
  ];
  for (const r of refusals) {
    it(`${r.what} refuses the second call with ${grpc.status[r.status]} and the message`, async () => {
      const first = await unary(r.service, r.token);
      assert.equal(first.err, null, 'the first call is within the limit');
      const second = await unary(r.service, r.token);
      assert.equal(second.status.code, r.status, `${r.code}: ${second.status.details}`);
      assert.equal(second.status.details, r.message);
      assert.deepEqual(second.status.metadata.get('x-mtlsgate-code'), [r.code]);
    });
  }

  const upstreamFailures = [
    // cause: the record's upstream_error, from the proxy.http2 path (runtime/proxy-http2.ts).
    {
      what: 'a dead upstream (502)',
      service: 'Dead',
      code: 'proxy.upstream_error',
      message: 'There was a problem proxying the request',
      cause: 'ECONNREFUSED',
    },
    { what: 'an upstream timeout (504)', service: 'Slow', code: 'proxy.upstream_timeout', message: 'Upstream timed out', cause: 'STREAM_TIMEOUT' },
  ];
  for (const f of upstreamFailures) {
    it(`${f.what} ends the call with UNAVAILABLE and the message`, async () => {
      const { status } = await unary(f.service);
      assert.equal(status.code, grpc.status.UNAVAILABLE, `${f.code}: ${status.details}`);
      assert.equal(status.details, f.message);
      assert.deepEqual(status.metadata.get('x-mtlsgate-code'), [f.code]);
      const record = gw.records.find((x) => x.path === `/demo.${f.service}/Hello`);
      assert.equal(record?.code, f.code);
      assert.equal(record?.upstreamError, f.cause);
    });
  }
});
