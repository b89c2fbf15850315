// Node's ceiling for the bench: an https server that requests a client certificate and proxies
// every request to the upstream through one undici Pool, streaming, with NO checks at all
// (no pin, no routing, no logging). Whatever mtlsgate does costs on top of this.
// Usage: node --import tsx bench/peers/bare-node-proxy.ts PORT UPSTREAM_URL CERT KEY
import { readFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { createServer } from 'node:https';
import { Pool } from 'undici';

const [portArg, upstream, certFile, keyFile] = process.argv.slice(2);

const pool = new Pool(upstream, { connections: 256, keepAliveTimeout: 300_000, pipelining: 1 });

// RFC 9110 7.6.1: connection-specific headers are not forwarded.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'host']);

function forwardable(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
  }
  return out;
}

const server = createServer(
  { cert: readFileSync(certFile), key: readFileSync(keyFile), requestCert: true, rejectUnauthorized: false, keepAliveTimeout: 300_000 },
  (req, res) => {
    const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
    pool
      .stream({ path: req.url!, method: req.method as 'GET', headers: forwardable(req.headers), body: hasBody ? req : null }, ({ statusCode, headers }) => {
        res.writeHead(statusCode, forwardable(headers));
        return res;
      })
      .catch(() => {
        if (!res.headersSent) res.writeHead(502, { 'content-length': '0' });
        res.end();
      });
  },
);
server.listen(Number(portArg), '127.0.0.1');
process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  void pool.close().then(() => process.exit(0));
});
