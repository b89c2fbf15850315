// Fallback upstream when NGINX is not installed: a minimal keep-alive HTTP server returning a
// small fixed body with Content-Length. Usage: node --import tsx bench/peers/node-upstream.ts PORT BODY
import { createServer } from 'node:http';

const port = Number(process.argv[2]);
const body = Buffer.from(process.argv[3] ?? 'ok\n');
const server = createServer({ keepAliveTimeout: 300_000 }, (req, res) => {
  // Drain the request body (GETs have none, but a proxy may send one).
  req.resume();
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
});
server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
