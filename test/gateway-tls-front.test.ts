// Promises docs/request-path.md makes about the connection, before any request: a client that sends
// no complete ClientHello within 10 s is dropped (silent, or dribbling bytes to stay "active"),
// and TLS 1.2 is the minimum (a TLS 1.1 ClientHello is refused by the server). Against
// `mtlsgate serve` built and spawned as users run it.
import assert from 'node:assert/strict';
import { connect as connectTcp } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { DemoPki } from '../cli/pki.ts';
import { compileYaml, curlE2E, recordingUpstream, serveBundle, type RecordingUpstream, type Served } from './helpers/e2e.ts';
import { tempDir } from './helpers/ops-fixtures.ts';
import { demoPki, run } from './helpers/serve-fixtures.ts';

/** The documented deadline (docs/request-path.md, "Connection"). */
const HELLO_DEADLINE_MS = 10_000;
/** Far beyond the deadline: a socket still open then was never going to be dropped. */
const GIVE_UP_MS = 60_000;

const t = tempDir('tls-front');
let pki: DemoPki;
let upstream: RecordingUpstream;
let gw: Served;

before(async () => {
  pki = await demoPki(t.dir);
  upstream = await recordingUpstream();
  const bundle = await compileYaml(t.dir, {
    'open.yaml': `kind: api\nid: open\nproxy:\n  listen_path: /\n  target_url: ${upstream.url}\nuse_keyless: true\n`,
  });
  gw = await serveBundle(bundle, pki);
});
after(async () => {
  await gw?.stop();
  await upstream?.close();
  t.cleanup();
});

/**
 * Opens a TCP connection, calls `feed(write)` once connected, and resolves with how long after
 * the connect the SERVER closed it, or null if it was still open after GIVE_UP_MS.
 */
function closedByServerAfter(feed: (write: (b: Buffer) => void, stopped: () => boolean) => void): Promise<{ ms: number | null; received: number }> {
  return new Promise((resolve) => {
    let received = 0;
    let connectedAt = 0;
    let done = false;
    const socket = connectTcp(gw.port, '127.0.0.1', () => {
      connectedAt = Date.now();
      feed(
        (b) => !socket.destroyed && socket.write(b),
        () => done,
      );
    });
    const giveUp = setTimeout(() => {
      done = true;
      socket.destroy();
      resolve({ ms: null, received });
    }, GIVE_UP_MS);
    socket.on('data', (d) => (received += d.length));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      if (done) return;
      done = true;
      clearTimeout(giveUp);
      resolve({ ms: Date.now() - connectedAt, received });
    });
  });
}

test('ClientHello deadline: silent and dribbling clients are dropped 10 s after they connect', async () => {
  const [silent, dribbling] = await Promise.all([
    closedByServerAfter(() => undefined),
    // A TLS record header announcing a 512-byte handshake, then one byte a second: the socket
    // is never idle for long, but the ClientHello never completes.
    closedByServerAfter((write, stopped) => {
      write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]));
      const tick = setInterval(() => (stopped() ? clearInterval(tick) : write(Buffer.from([0x00]))), 1_000);
    }),
  ]);
  for (const [what, r] of [
    ['silent', silent],
    ['dribbling', dribbling],
  ] as const) {
    assert.notEqual(r.ms, null, `${what}: still open ${GIVE_UP_MS} ms after connecting`);
    // Timers never fire early, so the lower bound holds on any machine (less 100 ms of clock
    // granularity between the two processes); the upper bound is only "not never".
    assert.ok(r.ms! >= HELLO_DEADLINE_MS - 100, `${what}: dropped after ${r.ms} ms, before the ${HELLO_DEADLINE_MS} ms deadline`);
    assert.equal(r.received, 0, `${what}: nothing is sent to a client that never said hello`);
    console.log(`${what} client dropped ${r.ms} ms after connecting`);
  }
  // The gateway is unharmed.
  assert.equal((await curlE2E(`${gw.base}/after`, pki)).status, 200);
});

test('TLS 1.2 is the minimum: a TLS 1.1 ClientHello gets a protocol_version alert; 1.2 and 1.3 are served', async () => {
  // The client side is made willing to speak TLS 1.1 (OpenSSL 3 forbids it at its default
  // security level), so a failure can only come from the server.
  const handshake = (maxVersion: 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3') =>
    new Promise<string>((resolve, reject) => {
      const s = connectTls({
        host: '127.0.0.1',
        port: gw.port,
        servername: 'localhost',
        ca: pki.ca.certPem,
        minVersion: 'TLSv1',
        maxVersion,
        ciphers: 'DEFAULT@SECLEVEL=0',
      });
      s.once('secureConnect', () => {
        const version = s.getProtocol() ?? '';
        s.destroy();
        resolve(version);
      });
      s.once('error', reject);
    });
  await assert.rejects(handshake('TLSv1.1'), (err: NodeJS.ErrnoException) => {
    assert.equal(err.code, 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION', `the server's alert, not a client-side refusal: ${err.message}`);
    return true;
  });
  assert.equal(await handshake('TLSv1.2'), 'TLSv1.2');
  assert.equal(await handshake('TLSv1.3'), 'TLSv1.3');

  // The same with curl: --tls-max 1.1 fails the handshake, --tls-max 1.2 gets its answer.
  const old = await run('curl', [
    '-sS',
    '--cacert',
    join(pki.dir, 'ca.pem'),
    '--tlsv1.1',
    '--tls-max',
    '1.1',
    '--ciphers',
    'DEFAULT@SECLEVEL=0',
    `${gw.base}/x`,
  ]);
  assert.equal(old.code, 35, `curl exit 35 (TLS handshake failed): ${old.stderr}`);
  assert.match(old.stderr, /protocol version/i);
  assert.equal((await curlE2E(`${gw.base}/x`, pki, { extra: ['--tls-max', '1.2'] })).status, 200);
});
