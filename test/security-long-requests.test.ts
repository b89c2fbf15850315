// Long-lived requests are decided again while they are open, as WebSocket tunnels are: a gRPC
// server stream through a `proxy.http2` upstream (grpc-js on both ends) and a slow HTTP/1.1 or
// HTTP/2 answer through the pool (curl, an SSE-like stream) are cut when a CRL refresh revokes
// the client's certificate or a bundle reload removes its key, and the upstream request is
// cancelled; a stream nothing revoked goes on across a reload.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, afterEach, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { loadBundle } from '../bundle/read.ts';
import { serializeBundle } from '../bundle/write.ts';
import type { Bundle } from '../bundle/types.ts';
import { fingerprintOf } from '../cert/fingerprint.ts';
import { subjectLine } from '../cert/subject.ts';
import { startCrlFetcher, type CrlFetcher } from '../runtime/crl-fetcher.ts';
import { REDECIDE_EVERY_MS } from '../runtime/open-requests.ts';
import { closeAllUpstreams } from '../runtime/upstreams.ts';
import { bundleContent, type KeySpec } from './helpers/bundle-builder.ts';
import { createCrl } from './helpers/demo-crl.ts';
import { makePki, startTestGateway, type TestGateway, type TestPki } from './helpers/gateway-fixtures.ts';
import { settledWithin, waitFor } from './helpers/ops-fixtures.ts';

const PROTO = `syntax = "proto3";
package live;
service Ticker { rpc Watch (WatchRequest) returns (stream Tick); }
message WatchRequest { string name = 1; }
message Tick { string message = 1; }
`;
const TICK_MS = 100;
type Client = 'alice' | 'bob' | 'partner-a' | 'mallory';

/** A grpc-js server streaming a tick every 100 ms until the call is cancelled; remembers cancellations by name. */
async function startTicker(pki: TestPki): Promise<{ server: grpc.Server; url: string; cancelled: Set<string>; Ticker: grpc.ServiceClientConstructor }> {
  const def = grpc.loadPackageDefinition(protoLoader.loadSync(pki.file('ticker.proto', PROTO)));
  const Ticker = (def.live as grpc.GrpcObject).Ticker as grpc.ServiceClientConstructor;
  const cancelled = new Set<string>();
  const server = new grpc.Server();
  server.addService(Ticker.service, {
    Watch: (call: grpc.ServerWritableStream<{ name: string }, unknown>) => {
      let n = 0;
      const timer = setInterval(() => call.write({ message: `${call.request.name} ${++n}` }), TICK_MS);
      call.on('cancelled', () => {
        clearInterval(timer);
        cancelled.add(call.request.name);
      });
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { server, url: `http://127.0.0.1:${port}`, cancelled, Ticker };
}

interface SlowAnswer {
  path: string;
  /** The request closed before its answer was finished (the gateway gave up on it). */
  abandoned: boolean;
}

/** /events/: an event every 100 ms, never ending; /late/: headers after 20 s. */
async function startEvents(): Promise<{ server: Server; url: string; seen: SlowAnswer[] }> {
  const seen: SlowAnswer[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const s: SlowAnswer = { path: req.url ?? '', abandoned: false };
    seen.push(s);
    const timers: NodeJS.Timeout[] = [];
    res.on('close', () => {
      for (const t of timers) clearTimeout(t);
      if (!res.writableFinished) s.abandoned = true;
    });
    if (s.path.startsWith('/late/')) {
      timers.push(setTimeout(() => res.writeHead(200).end('late'), 20_000));
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    let n = 0;
    timers.push(setInterval(() => res.write(`data: ${++n}\n\n`), TICK_MS));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

/** curl left running: its output so far, and its exit code once it ends. */
function curlRunning(pki: TestPki, port: number, client: Client, path: string, extra: string[] = []): { out: () => string; exit: Promise<number> } {
  const args = ['-sS', '-N', '--max-time', '40', '--cacert', pki.certFile('ca'), '--cert', pki.certFile(client), '--key', pki.keyFile(client)];
  args.push('-D', '-', ...extra, `https://localhost:${port}${path}`);
  const child = spawn('curl', args);
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  return { out: () => out, exit: new Promise((resolve) => child.once('exit', (code) => resolve(code ?? -1))) };
}

describe('long-lived requests are decided again while open', () => {
  let pki: TestPki;
  let cleanup: () => void;
  let ticker: Awaited<ReturnType<typeof startTicker>>;
  let events: Awaited<ReturnType<typeof startEvents>>;
  let crlServer: Server;
  let crlPem: string;
  let fetcher: CrlFetcher;
  let gw: TestGateway;
  const clients: grpc.Client[] = [];
  const calls: grpc.ClientReadableStream<unknown>[] = [];

  /** Dynamic mTLS: every demo client's certificate is a key with access to both APIs, except those left `out`. */
  const bundle = (out: Client[] = []): Bundle => {
    const keys: KeySpec[] = (['alice', 'bob', 'partner-a', 'mallory'] as const)
      .filter((name) => !out.includes(name))
      .map((name) => ({
        id: name,
        certificates: [pki.clients[name].fingerprint],
        access_rights: { grpc: { allowed_urls: null }, sse: { allowed_urls: null } },
      }));
    const content = bundleContent(
      [
        { id: 'grpc', listen_path: '/live.Ticker/', strip_listen_path: false, target_url: ticker.url, upstream_http2: true, use_certificate: true },
        { id: 'sse', listen_path: '/sse/', target_url: events.url, use_certificate: true },
      ],
      keys,
    );
    // The demo CA signs the CRL the gateway fetches (crl_urls).
    const ca = new X509Certificate(pki.ca.certPem);
    content.cas[fingerprintOf(ca.raw)] = { pem: pki.ca.certPem, subject: subjectLine(ca), apis: [] };
    content.revocation.crl_urls = [`http://127.0.0.1:${(crlServer.address() as AddressInfo).port}/ca.crl`];
    return loadBundle(serializeBundle(content));
  };

  before(async () => {
    ({ pki, cleanup } = await makePki());
    ticker = await startTicker(pki);
    events = await startEvents();
    crlPem = await createCrl(pki.ca, []);
    crlServer = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/pkix-crl' }).end(crlPem));
    await new Promise<void>((resolve) => crlServer.listen(0, '127.0.0.1', resolve));
    gw = await startTestGateway(pki, bundle());
    // Fetched on demand (refreshAll) in these tests: the interval is long.
    fetcher = startCrlFetcher({ snapshot: () => gw.snapshot(), intervalMs: 600_000 });
    await fetcher.refreshAll();
  });
  afterEach(async () => {
    for (const call of calls.splice(0)) call.cancel();
    // Every test starts from a bundle with every key and a CRL revoking nothing.
    crlPem = await createCrl(pki.ca, []);
    await fetcher.refreshAll();
    gw.use(bundle());
  });
  after(async () => {
    for (const c of clients) c.close();
    fetcher.stop();
    await gw.close();
    ticker.server.forceShutdown();
    events.server.closeAllConnections();
    events.server.close();
    crlServer.close();
    await closeAllUpstreams();
    cleanup();
  });

  /** A Watch call as `name`: the ticks it got, and its error once it ends. */
  function watch(name: Client): { ticks: string[]; error: () => grpc.ServiceError | null; ended: () => boolean } {
    const creds = grpc.credentials.createSsl(Buffer.from(pki.ca.certPem), Buffer.from(pki.clients[name].keyPem), Buffer.from(pki.clients[name].certPem));
    const client = new ticker.Ticker(`localhost:${gw.port}`, creds);
    clients.push(client);
    const ticks: string[] = [];
    let error: grpc.ServiceError | null = null;
    let ended = false;
    const call = client.Watch({ name }) as grpc.ClientReadableStream<{ message: string }>;
    calls.push(call);
    call.on('data', (m: { message: string }) => ticks.push(m.message));
    call.on('error', (err: grpc.ServiceError) => (error = err));
    call.on('end', () => (ended = true));
    return { ticks, error: () => error, ended: () => ended };
  }

  it('gRPC: a server stream whose certificate a CRL refresh revokes ends with PERMISSION_DENIED, the upstream call is cancelled; another stream goes on', async () => {
    const revoked = watch('alice');
    const kept = watch('bob');
    await waitFor('both streams to tick', () => revoked.ticks.length >= 3 && kept.ticks.length >= 3, 15_000);
    crlPem = await createCrl(pki.ca, [pki.clients.alice]);
    await fetcher.refreshAll();
    const cutAt = Date.now();
    // Before: the stream went on ticking for as long as the client kept it open.
    await waitFor('the revoked stream to end', () => revoked.error() !== null, 10_000);
    assert.ok(Date.now() - cutAt < REDECIDE_EVERY_MS, `cut ${Date.now() - cutAt} ms after the change: not within the re-decision interval`);
    assert.equal(revoked.error()!.code, grpc.status.PERMISSION_DENIED);
    assert.equal(revoked.error()!.details, 'Certificate has been revoked');
    await waitFor('the upstream call to be cancelled', () => ticker.cancelled.has('alice'), 10_000);
    const before = kept.ticks.length;
    await waitFor('the other stream to keep ticking', () => kept.ticks.length >= before + 5, 10_000);
    assert.equal(kept.error(), null);
    const record = await waitFor(
      'the record',
      () => gw.records.find((r) => r.cert === pki.clients.alice.fingerprint && r.path === '/live.Ticker/Watch'),
      10_000,
    );
    assert.equal(record.code, 'access.revoked_in_flight');
    assert.equal(record.status, 200);
  });

  it('gRPC: a server stream whose key a reload removes ends with UNAUTHENTICATED, the upstream call is cancelled; a stream the reload leaves alone goes on', async () => {
    const removed = watch('partner-a');
    const kept = watch('mallory');
    await waitFor('both streams to tick', () => removed.ticks.length >= 3 && kept.ticks.length >= 3, 15_000);
    gw.use(bundle(['partner-a']));
    const cutAt = Date.now();
    await waitFor('the stream of the removed key to end', () => removed.error() !== null, 10_000);
    assert.ok(Date.now() - cutAt < REDECIDE_EVERY_MS, `cut ${Date.now() - cutAt} ms after the change: not within the re-decision interval`);
    assert.equal(removed.error()!.code, grpc.status.UNAUTHENTICATED);
    assert.equal(removed.error()!.details, 'Access to this API has been disallowed');
    await waitFor('the upstream call to be cancelled', () => ticker.cancelled.has('partner-a'), 10_000);
    // A second reload, and the periodic decision (every 5 s): the kept stream is decided again, and passes.
    gw.use(bundle(['partner-a']));
    const before = kept.ticks.length;
    await waitFor('the other stream to keep ticking past a periodic decision', () => kept.ticks.length >= before + 60, 15_000);
    assert.equal(kept.error(), null);
    assert.equal(kept.ended(), false);
    assert.equal(ticker.cancelled.has('mallory'), false);
  });

  it('gRPC: a call the client cancels is cancelled upstream (RST_STREAM CANCEL through the gateway)', async () => {
    const creds = grpc.credentials.createSsl(Buffer.from(pki.ca.certPem), Buffer.from(pki.clients.alice.keyPem), Buffer.from(pki.clients.alice.certPem));
    const client = new ticker.Ticker(`localhost:${gw.port}`, creds);
    clients.push(client);
    const call = client.Watch({ name: 'cancelled-by-client' }) as grpc.ClientReadableStream<{ message: string }>;
    let ticks = 0;
    call.on('data', () => ticks++);
    call.on('error', () => {});
    await waitFor('the stream to tick', () => ticks >= 3, 15_000);
    call.cancel();
    await waitFor('the upstream call to be cancelled', () => ticker.cancelled.has('cancelled-by-client'), 5_000);
  });

  for (const version of ['HTTP/1.1', 'HTTP/2'] as const) {
    const flag = version === 'HTTP/1.1' ? '--http1.1' : '--http2';
    it(`${version}: an SSE-like answer is cut when a CRL refresh revokes the certificate, and when a reload removes the key; its upstream request is aborted`, async () => {
      const path = `/sse/events/${version === 'HTTP/1.1' ? 'h1' : 'h2'}`;
      const byCrl = curlRunning(pki, gw.port, 'bob', `${path}/crl`, [flag]);
      const byReload = curlRunning(pki, gw.port, 'mallory', `${path}/reload`, [flag]);
      await waitFor('events to flow', () => (byCrl.out().match(/data: /g)?.length ?? 0) >= 3 && (byReload.out().match(/data: /g)?.length ?? 0) >= 3, 15_000);
      crlPem = await createCrl(pki.ca, [pki.clients.bob]);
      await fetcher.refreshAll();
      // Before: curl ran into its --max-time (40 s), the events still coming.
      const crlExit = await settledWithin(byCrl.exit, REDECIDE_EVERY_MS, 'running');
      assert.notEqual(crlExit, 'running', 'the answer of the revoked certificate is cut within the re-decision interval');
      assert.notEqual(crlExit, 0, 'a cut answer is not a complete one');
      gw.use(bundle(['mallory']));
      const reloadExit = await settledWithin(byReload.exit, REDECIDE_EVERY_MS, 'running');
      assert.notEqual(reloadExit, 'running', 'the answer of the removed key is cut within the re-decision interval');
      assert.notEqual(reloadExit, 0);
      for (const p of [`${path}/crl`, `${path}/reload`]) {
        await waitFor(`the upstream request ${p} to be aborted`, () => events.seen.find((s) => s.path === p.slice('/sse'.length))?.abandoned, 10_000);
        await waitFor(`the record of ${p}`, () => gw.records.find((r) => r.path === p), 10_000);
        assert.equal(gw.records.find((r) => r.path === p)!.code, 'access.revoked_in_flight');
      }
    });
  }

  it('an answer not started yet: the client gets the refusal it would get now (401 auth.cert_not_found), the upstream request is aborted', async () => {
    const late = curlRunning(pki, gw.port, 'alice', '/sse/late/x', ['--http1.1']);
    await waitFor('the upstream to get the request', () => events.seen.find((s) => s.path === '/late/x'), 15_000);
    gw.use(bundle(['alice']));
    const exit = await settledWithin(late.exit, REDECIDE_EVERY_MS, 'running');
    assert.equal(exit, 0);
    assert.match(late.out(), /^HTTP\/1\.1 401 /);
    assert.match(late.out(), /"code":"auth\.cert_not_found"/);
    await waitFor('the upstream request to be aborted', () => events.seen.find((s) => s.path === '/late/x')?.abandoned, 10_000);
    const record = await waitFor('the record', () => gw.records.find((r) => r.path === '/sse/late/x'), 10_000);
    assert.deepEqual([record.status, record.code], [401, 'access.revoked_in_flight']);
  });
});
