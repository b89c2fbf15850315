// Issue 10 items 7 and 10: bounded connections and TLS defaults.
// Before: the 10 s ClientHello timeout ended with the ClientHello, so a client that sent one and
// then dribbled (or stalled) the rest of the handshake held its socket; nothing capped
// connections; client-initiated renegotiation was allowed (Node's default: 3 per 10 min);
// TLS 1.2 accepted CBC suites (OpenSSL "HIGH").
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { join } from 'node:path';
import type { RefusedReason } from '../runtime/tls-front.ts';
import { captureClientHello } from './helpers/client-hello.ts';
import { closeGatewayTest, keylessOpenBundle, startPkiAndEcho } from './helpers/config-gateway.ts';
import { startTestGateway, type EchoUpstream, type TestPki } from './helpers/gateway-fixtures.ts';
import { bundleOf, openApi, tempDir, waitFor } from './helpers/ops-fixtures.ts';
import { demoPki, startInProcess } from './helpers/serve-fixtures.ts';
import { writeFileSync } from 'node:fs';

let pki: TestPki;
let cleanup: () => void;
let echo: EchoUpstream;
before(async () => {
  ({ pki, cleanup, echo } = await startPkiAndEcho());
});
after(() => closeGatewayTest({ echo, cleanup }));

const bundle = () => keylessOpenBundle(echo);

function rawSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = netConnect(port, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
  });
}
const closed = (s: Socket) => s.destroyed || s.readableEnded;

test('the deadline runs from accept to the end of the TLS handshake, not to the ClientHello', async () => {
  const refused: RefusedReason[] = [];
  const gw = await startTestGateway(pki, bundle(), { handshakeTimeoutMs: 400, onConnectionRefused: (r) => refused.push(r) });
  try {
    const s = await rawSocket(gw.port);
    s.on('error', () => undefined);
    s.on('data', () => undefined); // the server's flight; never answered
    let ended = false;
    s.on('close', () => (ended = true));
    s.write(await captureClientHello('localhost')); // a complete ClientHello, then nothing
    await waitFor('the half-handshaken socket closed', () => ended, 15_000);
    assert.deepEqual(refused, ['handshake_deadline']);
    // A client that completes its handshake in time is not affected, however long it then idles.
    const c = tlsConnect({ host: '127.0.0.1', port: gw.port, servername: 'localhost', ca: pki.ca.certPem });
    await new Promise<void>((r, j) => c.once('secureConnect', r).once('error', j));
    await new Promise((r) => setTimeout(r, 800));
    assert.ok(!c.destroyed);
    c.destroy();
  } finally {
    await gw.close();
  }
});

test('connections are capped, in total and per client address; what is refused is counted', async () => {
  const refused: RefusedReason[] = [];
  const gw = await startTestGateway(pki, bundle(), { maxConnections: 100, maxConnectionsPerAddress: 3, onConnectionRefused: (r) => refused.push(r) });
  const sockets: Socket[] = [];
  try {
    for (let i = 0; i < 5; i++) {
      const s = await rawSocket(gw.port);
      s.on('error', () => undefined);
      sockets.push(s);
    }
    await waitFor('two sockets closed by the per-address cap', () => sockets.filter(closed).length === 2, 15_000);
    assert.deepEqual(refused, ['max_connections_per_address', 'max_connections_per_address']);
    assert.deepEqual(sockets.slice(0, 3).map(closed), [false, false, false], 'the first three stay');
    // A slot frees when one closes.
    sockets[0].destroy();
    await waitFor(async () => {
      const s = await rawSocket(gw.port);
      s.on('error', () => undefined);
      sockets.push(s);
      await new Promise((r) => setTimeout(r, 100));
      return !closed(s);
    }, 15_000);
  } finally {
    for (const s of sockets) s.destroy();
    await gw.close();
  }
  const total = await startTestGateway(pki, bundle(), { maxConnections: 2, onConnectionRefused: (r) => refused.push(r) });
  const more: Socket[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      const s = await rawSocket(total.port);
      s.on('error', () => undefined);
      more.push(s);
    }
    await waitFor('the third closed by the total cap', () => closed(more[2]), 15_000);
    assert.equal(refused.at(-1), 'max_connections');
  } finally {
    for (const s of more) s.destroy();
    await total.close();
  }
});

test('serve: refused connections show in /metrics', async () => {
  const tmp = tempDir('sec-conn');
  try {
    const dpki = await demoPki(tmp.dir);
    const file = join(tmp.dir, 'b.json');
    writeFileSync(file, bundleOf([openApi('a', '/', echo.url)]));
    const gw = await startInProcess({ bundle: file, maxConnectionsPerAddress: 1 }, dpki);
    const sockets: Socket[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const s = await rawSocket(gw.running.gatewayAddress.port);
        s.on('error', () => undefined);
        sockets.push(s);
      }
      const line = await waitFor(
        'two refusals counted',
        async () => {
          const text = await (await fetch(`${gw.admin}/metrics`)).text();
          return /mtlsgate_connections_refused_total\{reason="max_connections_per_address"\} 2/.test(text) ? text : null;
        },
        15_000,
      );
      assert.match(line, /mtlsgate_connections_refused_total\{reason="handshake_deadline"\} 0/);
    } finally {
      for (const s of sockets) s.destroy();
      await gw.running.stop('test');
    }
  } finally {
    tmp.cleanup();
  }
});

function openssl(args: string[], input: string): Promise<string> {
  return new Promise((resolve) => {
    // The feeding stops when s_client ends (a refused handshake ends it early): its pending timer
    // kept this file's process alive for seconds after the last test.
    let feeding: NodeJS.Timeout | undefined;
    const child = execFile('openssl', args, { timeout: 30_000 }, (_err, stdout, stderr) => {
      clearTimeout(feeding);
      resolve(stdout + stderr);
    });
    // Feed slowly: s_client reads its commands ("R" renegotiates) line by line.
    let i = 0;
    const lines = input.split('\n');
    const next = () => {
      if (i >= lines.length) return void (feeding = setTimeout(() => child.stdin?.end(), 1_500));
      child.stdin?.write(lines[i++] + '\n');
      feeding = setTimeout(next, 700);
    };
    feeding = setTimeout(next, 1_000);
  });
}

test('TLS 1.2: client-initiated renegotiation is refused; only Mozilla-intermediate (AEAD, forward-secret) suites', async () => {
  const gw = await startTestGateway(pki, bundle());
  try {
    const base = ['s_client', '-connect', `127.0.0.1:${gw.port}`, '-servername', 'localhost', '-CAfile', pki.certFile('ca'), '-tls1_2'];
    // s_client reads "R" as "renegotiate" in interactive mode (no -ign_eof, no -quiet).
    const reneg = await openssl(base, 'R\nGET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r');
    assert.match(reneg, /RENEGOTIATING/);
    assert.match(reneg, /no renegotiation/);
    assert.doesNotMatch(reneg, /HTTP\/1\.1 /, 'the renegotiation must not succeed and carry on');
    const cbc = await openssl([...base, '-cipher', 'ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:AES128-SHA'], 'Q');
    assert.doesNotMatch(cbc, /Cipher is (ECDHE|AES)/, cbc);
    const gcm = await openssl([...base, '-cipher', 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256'], 'Q');
    assert.match(gcm, /Cipher is ECDHE-(ECDSA|RSA)-AES128-GCM-SHA256/);
  } finally {
    await gw.close();
  }
});

test('serve flags: --max-connections and --max-connections-per-address (or their variables) are positive whole numbers', async () => {
  const { serveConfig } = await import('../cli/commands/serve.ts');
  const base = ['--bundle', 'b.json', '--tls-cert', 'c', '--tls-key', 'k'];
  const d = serveConfig(base, {}).config;
  assert.deepEqual([d.maxConnections, d.maxConnectionsPerAddress], [10_000, 256]);
  const set = serveConfig([...base, '--max-connections', '50'], { MTLSGATE_MAX_CONNECTIONS_PER_ADDRESS: '5' }).config;
  assert.deepEqual([set.maxConnections, set.maxConnectionsPerAddress], [50, 5]);
  assert.throws(() => serveConfig([...base, '--max-connections', '0'], {}), /--max-connections must be a positive whole number/);
  assert.throws(
    () => serveConfig(base, { MTLSGATE_MAX_CONNECTIONS_PER_ADDRESS: 'lots' }),
    /MTLSGATE_MAX_CONNECTIONS_PER_ADDRESS must be a positive whole number/,
  );
});
