// A gRPC answer cut while open (docs/security.md section 22) never hands the client a truncated
// message followed by a status: cut between two messages it ends with grpc-status trailers (16
// UNAUTHENTICATED for a removed key); cut inside one, the stream is reset with CANCEL and the
// call fails. The upstream is an h2c server writing gRPC frames by hand, split across chunks at
// chosen bytes (a grpc-js server writes each message whole), then waiting; the clients are
// grpc-js and a node:http2 client that reads the frames off the wire, both over mTLS.
import assert from 'node:assert/strict';
import { connect as connectH2, createServer as createH2cServer, type Http2Server, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { GrpcFraming } from '../runtime/grpc.ts';
import { buildBundle } from './helpers/bundle-builder.ts';
import { makePki, startTestGateway, type TestGateway, type TestPki } from './helpers/gateway-fixtures.ts';
import { waitFor } from './helpers/ops-fixtures.ts';

const PROTO = `syntax = "proto3";
package split;
service Split { rpc Watch (WatchRequest) returns (stream Part); }
message WatchRequest { string name = 1; }
message Part { string text = 1; }
`;
const TEXTS = [`first ${'a'.repeat(200)}`, `second ${'b'.repeat(200)}`, 'third', `fourth ${'c'.repeat(100)}`];

/** A gRPC frame of a Part message: flag 0, the length, then field 1 (a string) with its varint length. */
function frame(text: string): Buffer {
  const utf8 = Buffer.from(text);
  const varint: number[] = [];
  for (let n = utf8.length; ; n >>>= 7) {
    if (n < 0x80) {
      varint.push(n);
      break;
    }
    varint.push((n & 0x7f) | 0x80);
  }
  const message = Buffer.concat([Buffer.from([0x0a, ...varint]), utf8]);
  const header = Buffer.alloc(5);
  header.writeUInt32BE(message.length, 1);
  return Buffer.concat([header, message]);
}

const [F1, F2, F3, F4] = TEXTS.map(frame);
/**
 * What the upstream writes, chunk after chunk, then nothing more until the call is cut. "mid":
 * the first message in three chunks (its header split), then the second's header split and
 * part of its body. "boundary": messages split at other places, ending after the fourth.
 */
const SCRIPTS: Record<'mid' | 'boundary', Buffer[]> = {
  mid: [F1.subarray(0, 3), F1.subarray(3, 50), Buffer.concat([F1.subarray(50), F2.subarray(0, 2)]), F2.subarray(2, 40)],
  boundary: [F1.subarray(0, 3), F1.subarray(3, 50), F1.subarray(50), Buffer.concat([F2, F3]), F4.subarray(0, 4), F4.subarray(4)],
};
const bytesOf = (script: Buffer[]) => script.reduce((n, b) => n + b.length, 0);

/** The h2c upstream: answers Watch with the script named by the x-script header; remembers calls reset with CANCEL by x-call. */
async function startSplitter(): Promise<{ server: Http2Server; url: string; cancelled: Set<string>; close(): void }> {
  const cancelled = new Set<string>();
  const sessions = new Set<ServerHttp2Session>();
  const server = createH2cServer();
  server.on('session', (s) => {
    sessions.add(s);
    s.once('close', () => sessions.delete(s));
  });
  server.on('stream', (stream: ServerHttp2Stream, headers) => {
    const script = SCRIPTS[headers['x-script'] as 'mid' | 'boundary'];
    const call = String(headers['x-call']);
    stream.on('error', () => {});
    stream.on('close', () => {
      if (stream.rstCode === 8 /* CANCEL */) cancelled.add(call);
    });
    stream.resume();
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    let i = 0;
    // Apart in time, so that each reaches the gateway as a chunk of its own.
    const timer = setInterval(() => {
      if (i < script.length && !stream.destroyed) stream.write(script[i++]);
      else clearInterval(timer);
    }, 30);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    server,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    cancelled,
    close() {
      for (const s of sessions) s.destroy();
      server.close();
    },
  };
}

interface GrpcJsCall {
  texts: string[];
  error: grpc.ServiceError | null;
}

interface WireCall {
  /** The DATA bytes the client received. */
  data: Buffer;
  trailers: Record<string, unknown> | null;
  /** The stream's RST_STREAM code once closed, else null. */
  rstCode: number | null;
}

describe('a gRPC answer cut while open: trailers between messages, a reset inside one', () => {
  let pki: TestPki;
  let cleanup: () => void;
  let upstream: Awaited<ReturnType<typeof startSplitter>>;
  let Split: grpc.ServiceClientConstructor;
  let gw: TestGateway;
  const clients: grpc.Client[] = [];
  const sessions: { close(): void }[] = [];
  type Client = 'alice' | 'bob';

  const bundle = (out: Client[] = []) =>
    buildBundle(
      [{ id: 'split', listen_path: '/split.Split/', strip_listen_path: false, target_url: upstream.url, upstream_http2: true, use_certificate: true }],
      (['alice', 'bob'] as const)
        .filter((name) => !out.includes(name))
        .map((name) => ({ id: name, certificates: [pki.clients[name].fingerprint], access_rights: { split: { allowed_urls: null } } })),
    );

  before(async () => {
    ({ pki, cleanup } = await makePki());
    upstream = await startSplitter();
    const def = grpc.loadPackageDefinition(protoLoader.loadSync(pki.file('split.proto', PROTO)));
    Split = (def.split as grpc.GrpcObject).Split as grpc.ServiceClientConstructor;
    gw = await startTestGateway(pki, bundle());
  });
  after(async () => {
    for (const c of clients) c.close();
    for (const s of sessions) s.close();
    await gw.close();
    upstream.close();
    cleanup();
  });

  function grpcJsCall(name: Client, script: 'mid' | 'boundary', call: string): GrpcJsCall {
    const creds = grpc.credentials.createSsl(Buffer.from(pki.ca.certPem), Buffer.from(pki.clients[name].keyPem), Buffer.from(pki.clients[name].certPem));
    const client = new Split(`localhost:${gw.port}`, creds);
    clients.push(client);
    const metadata = new grpc.Metadata();
    metadata.set('x-script', script);
    metadata.set('x-call', call);
    const out: GrpcJsCall = { texts: [], error: null };
    const stream = client.Watch({ name }, metadata) as grpc.ClientReadableStream<{ text: string }>;
    stream.on('data', (m: { text: string }) => out.texts.push(m.text));
    stream.on('error', (err: grpc.ServiceError) => (out.error = err));
    return out;
  }

  /** The same call with node:http2: what arrives on the wire. */
  function wireCall(name: Client, script: 'mid' | 'boundary', call: string): WireCall {
    const session = connectH2(`https://localhost:${gw.port}`, { ca: pki.ca.certPem, cert: pki.clients[name].certPem, key: pki.clients[name].keyPem });
    session.on('error', () => {});
    sessions.push(session);
    const stream = session.request({
      ':method': 'POST',
      ':path': '/split.Split/Watch',
      'content-type': 'application/grpc',
      te: 'trailers',
      'x-script': script,
      'x-call': call,
    });
    const out: WireCall = { data: Buffer.alloc(0), trailers: null, rstCode: null };
    stream.on('error', () => {});
    stream.on('data', (c: Buffer) => (out.data = Buffer.concat([out.data, c])));
    stream.on('trailers', (t) => (out.trailers = t));
    stream.on('close', () => (out.rstCode = stream.rstCode ?? 0));
    stream.end(Buffer.from([0, 0, 0, 0, 0])); // an empty WatchRequest
    return out;
  }

  it('cut inside a message: the stream is reset with CANCEL, no status after the partial message; grpc-js reports CANCELLED having parsed the whole messages only; the upstream call is cancelled', async () => {
    const viaGrpcJs = grpcJsCall('alice', 'mid', 'mid-grpc-js');
    const onWire = wireCall('alice', 'mid', 'mid-wire');
    await waitFor('the first message and part of the second', () => viaGrpcJs.texts.length === 1 && onWire.data.length === bytesOf(SCRIPTS.mid), 15_000);
    await new Promise((r) => setTimeout(r, 200)); // grpc-js has the partial bytes too
    gw.use(bundle(['alice']));
    await waitFor('both calls to end', () => viaGrpcJs.error !== null && onWire.rstCode !== null, 10_000);
    // Before: trailers grpc-status 16 followed the truncated second message.
    assert.equal(onWire.trailers, null, `trailers after a truncated message: ${JSON.stringify(onWire.trailers)}`);
    assert.equal(onWire.rstCode, 8, 'RST_STREAM CANCEL');
    assert.deepEqual(onWire.data, Buffer.concat(SCRIPTS.mid));
    assert.equal(viaGrpcJs.error!.code, grpc.status.CANCELLED, `${viaGrpcJs.error!.code} ${viaGrpcJs.error!.details}`);
    assert.deepEqual(viaGrpcJs.texts, [TEXTS[0]]);
    await waitFor('the upstream calls to be cancelled', () => upstream.cancelled.has('mid-grpc-js') && upstream.cancelled.has('mid-wire'), 10_000);
    const records = gw.records.filter((r) => r.cert === pki.clients.alice.fingerprint);
    assert.deepEqual(
      records.map((r) => [r.status, r.code]),
      [
        [200, 'access.revoked_in_flight'],
        [200, 'access.revoked_in_flight'],
      ],
    );
  });

  it('cut between two messages (each split across chunks on the way): trailers grpc-status 16 after whole messages; grpc-js gets all four and UNAUTHENTICATED', async () => {
    const viaGrpcJs = grpcJsCall('bob', 'boundary', 'boundary-grpc-js');
    const onWire = wireCall('bob', 'boundary', 'boundary-wire');
    await waitFor('four messages', () => viaGrpcJs.texts.length === 4 && onWire.data.length === bytesOf(SCRIPTS.boundary), 15_000);
    gw.use(bundle(['bob']));
    await waitFor('both calls to end', () => viaGrpcJs.error !== null && onWire.rstCode !== null, 10_000);
    assert.deepEqual(onWire.data, Buffer.concat(SCRIPTS.boundary));
    assert.equal(onWire.trailers?.['grpc-status'], '16');
    assert.equal(onWire.trailers?.['x-mtlsgate-code'], 'auth.cert_not_found');
    assert.equal(viaGrpcJs.error!.code, grpc.status.UNAUTHENTICATED, viaGrpcJs.error!.details);
    assert.deepEqual(viaGrpcJs.texts, TEXTS);
    await waitFor('the upstream calls to be cancelled', () => upstream.cancelled.has('boundary-grpc-js') && upstream.cancelled.has('boundary-wire'), 10_000);
  });
});

describe('GrpcFraming', () => {
  it('at a boundary exactly when the bytes so far end a message, however the frames are split (empty and large messages too)', () => {
    let seed = 7;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let round = 0; round < 200; round++) {
      const lengths = Array.from({ length: 1 + random(8) }, () => [0, 1, 4, 5, 300, 70_000][random(6)]);
      const frames = lengths.map((len) => {
        const f = Buffer.alloc(5 + len, 0x41);
        f.writeUInt32BE(len, 1);
        f[0] = random(2);
        return f;
      });
      const ends = new Set<number>();
      let at = 0;
      for (const f of frames) ends.add((at += f.length));
      const all = Buffer.concat(frames);
      const framing = new GrpcFraming();
      for (let i = 0; i < all.length; ) {
        const next = Math.min(all.length, i + 1 + random(random(2) === 0 ? 7 : 20_000));
        framing.add(all.subarray(i, next));
        i = next;
        assert.equal(framing.atMessageBoundary, ends.has(i), `round ${round}, lengths ${lengths}, after ${i} bytes`);
      }
    }
  });
});
