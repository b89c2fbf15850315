// The gateway side of bench/portal-scale.ts --serve: `mtlsgate serve --bundle DIR` on the sharded
// bundle the portal writes, an upstream for the API the portal's plan grants, and a client that
// presents a certificate until the gateway answers 200 (a new HTTPS connection per attempt, so
// each attempt is a fresh handshake and a fresh lookup).
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { request } from 'node:https';
import { join } from 'node:path';
import { benchPki } from './pki.ts';
import { SERVER_CORE, sleep, startProc, waitForPort, type Proc } from './proc.ts';
import { freePort } from '../../common/listen.ts';
import { serveCommand } from './serve-command.ts';

export interface Gateway {
  port: number;
  proc: Proc;
  stop: () => Promise<void>;
}

/** An upstream answering 200 on `port` (the generated APIs' target_url is http://127.0.0.1:900N). */
export function startUpstreamAt(port: number): Promise<Server> {
  const server = createServer((req, res) => {
    req.resume();
    res.end('ok\n');
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

export async function startGateway(root: string, bundleDir: string, workDir: string): Promise<Gateway> {
  const pki = await benchPki(join(root, 'bench', '.work'), 'ec');
  const port = await freePort();
  // The gateway on the server core as in the other sections; the portal runs unpinned.
  const proc = startProc('serve', SERVER_CORE, process.execPath, [...serveCommand(root, bundleDir, pki, port, 'off'), '-q'], {
    logFile: join(workDir, 'serve.log'),
  });
  await waitForPort(port, proc, 120_000);
  return { port, proc, stop: () => proc.stop() };
}

/** One HTTPS request presenting cert+key: the status, or 0 when the handshake or connection failed. */
export function statusWith(port: number, path: string, certPem: string, keyPem: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, cert: certPem, key: keyPem, rejectUnauthorized: false, agent: false, timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

/** Asks until the answer is 200; resolves with performance.now() of the answer that was, or NaN after timeoutMs. */
export async function firstOk(port: number, path: string, certPem: string, keyPem: string, timeoutMs: number): Promise<number> {
  const t0 = performance.now();
  while (performance.now() - t0 < timeoutMs) {
    if ((await statusWith(port, path, certPem, keyPem)) === 200) return performance.now();
    await sleep(5);
  }
  return Number.NaN;
}

/** curl presenting the certificate files: the HTTP status (0: refused). The independent client's word. */
export function curlStatus(port: number, path: string, certFile: string, keyFile: string): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(
      'curl',
      ['-sk', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '10', '--cert', certFile, '--key', keyFile, `https://127.0.0.1:${port}${path}`],
      {
        stdio: ['ignore', 'pipe', 'ignore'],
      },
    );
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.once('close', () => resolve(Number(out.trim()) || 0));
  });
}
