// A closed-loop HTTP/2 load client with a client certificate (ab and wrk speak HTTP/1.x only):
// SESSIONS TLS connections, STREAMS concurrent requests on each, for SECONDS; prints one JSON
// line {complete, errors, rps, p50Ms, p99Ms}. Its own ceiling is reported by the caller from
// its CPU (one Node process on the client core).
// Usage: node --import tsx bench/peers/h2-load-client.ts URL CERT KEY SECONDS SESSIONS STREAMS
import { readFileSync } from 'node:fs';
import { connect, type ClientHttp2Session } from 'node:http2';

const [url, certFile, keyFile, secondsArg, sessionsArg, streamsArg] = process.argv.slice(2);
const target = new URL(url);
const cert = readFileSync(certFile);
const key = readFileSync(keyFile);
const until = performance.now() + Number(secondsArg) * 1000;
const latencies: number[] = [];
let complete = 0;
let errors = 0;

function loop(session: ClientHttp2Session, done: () => void): void {
  if (performance.now() >= until) return done();
  const t0 = performance.now();
  const req = session.request({ ':method': 'GET', ':path': target.pathname });
  let status = 0;
  req.on('response', (h) => (status = Number(h[':status'])));
  req.on('data', () => {});
  req.on('end', () => {
    if (status === 200) {
      complete++;
      latencies.push(performance.now() - t0);
    } else errors++;
    loop(session, done);
  });
  req.on('error', () => {
    errors++;
    loop(session, done);
  });
  req.end();
}

const sessions = Array.from({ length: Number(sessionsArg) }, () =>
  connect(target.origin, { cert, key, rejectUnauthorized: false, servername: target.hostname === '127.0.0.1' ? undefined : target.hostname }),
);
const started = performance.now();
await Promise.all(sessions.flatMap((s) => Array.from({ length: Number(streamsArg) }, () => new Promise<void>((resolve) => loop(s, resolve)))));
const elapsedS = (performance.now() - started) / 1000;
for (const s of sessions) s.close();
latencies.sort((a, b) => a - b);
const q = (p: number) => (latencies.length ? Math.round(latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] * 1000) / 1000 : 0);
console.log(JSON.stringify({ complete, errors, rps: Math.round(complete / elapsedS), p50Ms: q(0.5), p99Ms: q(0.99), elapsedS }));
