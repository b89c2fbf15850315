// A tiny HTTP upstream for the demo, the tests and anyone trying the gateway by hand: answers every request with JSON describing
// what the gateway forwarded, so a newcomer sees the effect of strip_listen_path,
// strip_auth_data and forward_client_cert. It reports whether an Authorization header arrived,
// never its value (the demo prints tokens once, in the README; they must not echo around).
// `?delay_ms=N` (at most 60000) answers late: handy to see a 504 or a graceful drain.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { closeServer, listen } from '../common/listen.ts';

const ECHOED_HEADERS = ['host', 'user-agent', 'content-type', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-client-cert'] as const;

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
  const address = await listen(server, opts.port, opts.host ?? '127.0.0.1');
  return { name: opts.name, address, close: () => closeServer(server) };
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

/** The loopback http upstreams a bundle's APIs proxy to: "host:port" -> API ids. */
function loopbackTargets(apis: Iterable<{ id: string; target_url: string }>): Map<string, { host: string; port: number; apis: string[] }> {
  const out = new Map<string, { host: string; port: number; apis: string[] }>();
  for (const api of apis) {
    let url: URL;
    try {
      url = new URL(api.target_url);
    } catch {
      continue;
    }
    if (url.protocol !== 'http:' || !LOOPBACK.has(url.hostname)) continue;
    const host = url.hostname === 'localhost' ? '127.0.0.1' : url.hostname.replace(/^\[|\]$/g, '');
    const port = Number(url.port || 80);
    const key = `${host}:${port}`;
    const entry = out.get(key) ?? { host, port, apis: [] };
    entry.apis.push(api.id);
    out.set(key, entry);
  }
  return out;
}

/** Starts one echo upstream per loopback target; on a failure closes those started and throws. */
export async function startEchoUpstreams(apis: Iterable<{ id: string; target_url: string }>): Promise<EchoUpstream[]> {
  const started: EchoUpstream[] = [];
  for (const t of loopbackTargets(apis).values()) {
    try {
      started.push(await startEchoUpstream({ name: t.apis.join(','), host: t.host, port: t.port }));
    } catch (err) {
      await Promise.all(started.map((u) => u.close()));
      const e = err as NodeJS.ErrnoException;
      const why = e.code === 'EADDRINUSE' ? 'the port is in use (another demo running?)' : e.message;
      throw new Error(`cannot start the echo upstream for ${t.apis.join(', ')} on ${t.host}:${t.port}: ${why}`);
    }
  }
  return started;
}
