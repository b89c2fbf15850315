// End-to-end fixtures: YAML written to a directory, compiled by the built CLI
// (`node dist/mtlsgate.mjs compile`), served by `node dist/mtlsgate.mjs serve` as a child
// process, and asked with the real curl binary over loopback. No test-made bundle, no in-process
// gateway: what a user runs is what these tests run.
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import type { DemoPki } from '../../cli/pki.ts';
import { after, before } from 'node:test';
import { tempDir } from './ops-fixtures.ts';
import { compileWithCli, demoPki, run, spawnServe } from './serve-fixtures.ts';

/**
 * Writes each `relative path -> text` under DIR/config and compiles it with the CLI into
 * DIR/bundle.json. `outside` (default DIR): where certificates beside the config may be read.
 */
export async function compileYaml(dir: string, files: Record<string, string>, outside = dir): Promise<string> {
  const config = join(dir, 'config');
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(config, name)), { recursive: true });
    writeFileSync(join(config, name), text);
  }
  const bundle = join(dir, 'bundle.json');
  // A repository layout: config/ and certs/ side by side, so certificate paths leave the config
  // directory; `--allow-outside` admits the directory holding both (issue 10 item 4).
  await compileWithCli(config, bundle, ['--allow-outside', outside]);
  return bundle;
}

export interface Served {
  /** https://127.0.0.1:PORT */
  base: string;
  port: number;
  /** http://HOST:PORT of the admin listener. */
  admin: string;
  proc: ReturnType<typeof spawnServe>;
  /** SIGTERM, then waits for the exit. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `mtlsgate serve` on free loopback ports with the demo server certificate (or `tls`). */
export async function serveBundle(
  bundle: string,
  pki: DemoPki,
  extra: string[] = [],
  tls?: { cert: string; key: string },
  env: NodeJS.ProcessEnv = process.env,
): Promise<Served> {
  const proc = spawnServe(
    [
      '--bundle',
      bundle,
      '--tls-cert',
      tls?.cert ?? join(pki.dir, 'server.pem'),
      '--tls-key',
      tls?.key ?? join(pki.dir, 'server-key.pem'),
      '--listen',
      '127.0.0.1:0',
      '--admin',
      '127.0.0.1:0',
      ...extra,
    ],
    env,
  );
  const serving = await proc.serving();
  const port = Number(String(serving.listen).split(':').pop());
  return {
    base: `https://127.0.0.1:${port}`,
    port,
    admin: `http://${String(serving.admin)}`,
    proc,
    stop: async () => {
      if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGTERM');
      return proc.exited;
    },
  };
}

export interface CurlOptions {
  /** Demo client name (its PEM and key in the PKI directory), or explicit files. */
  client?: string;
  cert?: string;
  key?: string;
  headers?: Record<string, string>;
  method?: string;
  data?: string;
  /** Extra curl arguments (e.g. --resolve, --http1.1). */
  extra?: string[];
}

export interface CurlAnswer {
  status: number;
  /** Final response headers, names lower-cased (repeated names joined with ", "). */
  headers: Record<string, string>;
  body: string;
  json<T = Record<string, unknown>>(): T;
}

/** The real curl, trusting the demo CA; throws when curl itself fails (no HTTP answer). */
export async function curlE2E(url: string, pki: DemoPki, opts: CurlOptions = {}): Promise<CurlAnswer> {
  const args = ['-sS', '-i', '--max-time', '30', '--cacert', join(pki.dir, 'ca.pem')];
  const cert = opts.cert ?? (opts.client ? join(pki.dir, `${opts.client}.pem`) : undefined);
  const key = opts.key ?? (opts.client ? join(pki.dir, `${opts.client}-key.pem`) : undefined);
  if (cert) args.push('--cert', cert);
  if (key) args.push('--key', key);
  if (opts.method) args.push('-X', opts.method);
  if (opts.data !== undefined) args.push('--data-binary', opts.data);
  for (const [name, value] of Object.entries(opts.headers ?? {})) args.push('-H', `${name}: ${value}`);
  args.push(...(opts.extra ?? []), url);
  const r = await run('curl', args);
  if (r.code !== 0) throw new Error(`curl ${url} failed (exit ${r.code}): ${r.stderr.trim()}`);
  return parseCurlOutput(r.stdout);
}

/** Splits `curl -i` output: interim (1xx) header blocks are skipped. */
function parseCurlOutput(out: string): CurlAnswer {
  let rest = out;
  for (;;) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) throw new Error(`no HTTP header block in curl output: ${JSON.stringify(out.slice(0, 200))}`);
    const block = rest.slice(0, end);
    rest = rest.slice(end + 4);
    const [statusLine, ...lines] = block.split('\r\n');
    const status = Number(/^HTTP\/[\d.]+ (\d{3})/.exec(statusLine)?.[1]);
    if (status >= 100 && status < 200) continue;
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
    }
    const body = rest;
    return { status, headers, body, json: <T>() => JSON.parse(body) as T };
  }
}

export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

export interface RecordingUpstream {
  url: string;
  server: Server;
  requests: SeenRequest[];
  /** Answers every request held at a /hold/ path. */
  release(): void;
  close(): Promise<void>;
}

/**
 * An HTTP upstream that records every request and answers JSON {method, url, headers, body}.
 * `delay=MS` in the query delays the answer; paths containing /hold/ wait for `release()`;
 * paths containing /stall-headers/ never answer;
 * paths containing /stall-body/ answer 200 with the headers and half of a declared body, then
 * stall (the gateway's upstream timeout is what ends both).
 */
export async function recordingUpstream(): Promise<RecordingUpstream> {
  const requests: SeenRequest[] = [];
  const held: Array<() => void> = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const seen = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      requests.push(seen);
      if (seen.url.includes('/stall-headers/')) return; // never answers
      if (seen.url.includes('/stall-body/')) {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '200' });
        res.write('x'.repeat(100));
        return; // never ends: the rest of the declared body does not come
      }
      const answer = () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(seen));
      };
      const delay = Number(/[?&]delay=(\d+)/.exec(seen.url)?.[1] ?? 0);
      if (seen.url.includes('/hold/')) held.push(answer);
      else if (delay > 0) setTimeout(answer, delay);
      else answer();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    server,
    requests,
    release: () => held.splice(0).forEach((answer) => answer()),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface E2eFixture {
  dir: string;
  pki: DemoPki;
  upstream: RecordingUpstream;
  /** DIR/bundle.json, compiled from the fixture's YAML. */
  bundle: string;
}

/**
 * For the test file calling it: a temp directory (tempDir(name)) in which `before` makes the
 * demo PKI and a recording upstream and compiles `files` (compileYaml); `after` closes the
 * upstream and removes the directory. Read the fields inside tests and hooks.
 */
export function e2eFixture(name: string, files: (parts: { pki: DemoPki; upstream: RecordingUpstream }) => Record<string, string>): E2eFixture {
  const t = tempDir(name);
  const fixture = { dir: t.dir } as E2eFixture;
  before(async () => {
    fixture.pki = await demoPki(t.dir);
    fixture.upstream = await recordingUpstream();
    fixture.bundle = await compileYaml(t.dir, files(fixture));
  });
  after(async () => {
    await fixture.upstream?.close();
    t.cleanup();
  });
  return fixture;
}
