// A tiny HTTP upstream for the demo (and tests): answers every request with JSON describing
// what the gateway forwarded, so a newcomer sees the effect of strip_listen_path,
// strip_auth_data and forward_client_cert. It reports whether an Authorization header arrived,
// never its value (the demo prints tokens once, in the README; they must not echo around).
// `?delay_ms=N` (at most 60000) answers late: handy to see a 504 or a graceful drain.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

const ECHOED_HEADERS = [
  'host',
  'user-agent',
  'content-type',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-forwarded-client-cert',
] as const;

const MAX_DELAY_MS = 60_000;

export interface EchoUpstream {
  name: string;
  address: AddressInfo;
  close(): Promise<void>;
}

function describe(req: IncomingMessage, name: string, bodyBytes: number) {
  const headers: Record<string, string> = {};
  for (const h of ECHOED_HEADERS) {
    const v = req.headers[h];
    if (typeof v === 'string') headers[h] = v;
  }
  return {
    upstream: name,
    method: req.method,
    path: req.url,
    headers,
    authorization_received: req.headers.authorization !== undefined,
    body_bytes: bodyBytes,
  };
}

function delayOf(url: string | undefined): number {
  const m = /[?&]delay_ms=(\d+)/.exec(url ?? '');
  return m ? Math.min(Number(m[1]), MAX_DELAY_MS) : 0;
}

export async function startEchoUpstream(opts: { name: string; host?: string; port: number }): Promise<EchoUpstream> {
  const server: Server = createServer((req, res) => {
    let bodyBytes = 0;
    req.on('data', (chunk: Buffer) => (bodyBytes += chunk.length));
    req.on('end', () => {
      const answer = () => {
        const body = JSON.stringify(describe(req, opts.name, bodyBytes), null, 2) + '\n';
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
      };
      const delay = delayOf(req.url);
      if (delay > 0) setTimeout(answer, delay);
      else answer();
    });
  });
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolveListen();
    });
  });
  return {
    name: opts.name,
    address: server.address() as AddressInfo,
    close: () =>
      new Promise<void>((resolveClose) => {
        server.close(() => resolveClose());
        server.closeAllConnections();
      }),
  };
}
