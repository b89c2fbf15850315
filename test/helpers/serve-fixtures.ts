// Fixtures for the serve/reload tests: demo PKI, a two-API config (static mTLS pinning some
// certificates, dynamic mTLS with alice's key), compiling through the built CLI, curl, a
// keep-alive mTLS client, and the gateway run in-process or as `dist/mtlsgate.mjs serve`.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request, Agent } from 'node:https';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { Socket } from 'node:net';
import { writeDemoPki, type DemoPki } from '../../cli/pki.ts';
import { compileDir, formatDiagnostics } from '../../compiler/index.ts';
import { writeFileAtomic } from '../../common/atomic-write.ts';
import { createLogger } from '../../runtime/log.ts';
import { startGateway, type RunningGateway, type RuntimeConfig } from '../../runtime/supervisor.ts';
import { waitFor } from './ops-fixtures.ts';

export const CLI = join(import.meta.dirname, '..', '..', 'dist', 'mtlsgate.mjs');

export async function demoPki(dir: string): Promise<DemoPki> {
  return writeDemoPki(join(dir, 'certs'));
}

/**
 * Writes DIR/config: API "static" (/static/) pinning `pinned` (demo certificate names in
 * `certsDir`), API "dynamic" (/dynamic/) with key alice; `extraApi` adds an open API "extra".
 */
export function writeConfig(dir: string, certsDir: string, upstream: string, pinned: string[], extraApi = false): string {
  const config = join(dir, 'config');
  mkdirSync(join(config, 'certs'), { recursive: true });
  // Config reads stay inside the config directory (docs/security.md item 4): the certificates
  // the config names are copied in beside it, as a repository would hold them.
  for (const n of new Set([...pinned, 'alice'])) copyFileSync(join(certsDir, `${n}.pem`), join(config, 'certs', `${n}.pem`));
  certsDir = join(config, 'certs');
  const list = pinned.map((n) => `  - ${join(certsDir, `${n}.pem`)}`).join('\n');
  const docs = [
    `kind: api\nid: static\nproxy:\n  listen_path: /static/\n  target_url: ${upstream}\nuse_keyless: true\nuse_mutual_tls_auth: true\nclient_certificates:\n${list}\n`,
    `kind: api\nid: dynamic\nproxy:\n  listen_path: /dynamic/\n  target_url: ${upstream}\nauth:\n  use_certificate: true\n`,
    `kind: key\nid: alice\ncertificate: ${join(certsDir, 'alice.pem')}\naccess_rights:\n  dynamic: {}\n`,
  ];
  if (extraApi) docs.push(`kind: api\nid: extra\nproxy:\n  listen_path: /extra/\n  target_url: ${upstream}\nuse_keyless: true\n`);
  writeFileSync(join(config, 'apis.yaml'), docs.join('---\n'));
  return config;
}

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * CMD ARGS to its end: exit code (null when killed), stdout, stderr. At `timeoutMs` it is
 * killed with SIGKILL: a process held in a synchronous read (a named pipe) never runs the
 * SIGTERM handler serve and the portal install, so SIGTERM would leave the test waiting too.
 */
export function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<Run> {
  return new Promise((resolveRun) => {
    const options = { env: opts.env ?? process.env, cwd: opts.cwd, timeout: opts.timeoutMs ?? 60_000, killSignal: 'SIGKILL' as const, maxBuffer: 16 << 20 };
    execFile(cmd, args, options, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: unknown }).code as number | null) : 0;
      resolveRun({ code: typeof code === 'number' ? code : null, stdout, stderr });
    });
  });
}

/** Compiles CONFIG into OUT (written atomically, as `mtlsgate compile -o` does); throws on config errors. */
export async function compile(config: string, out: string): Promise<Buffer> {
  const result = await compileDir(config);
  if (!result.bundle) throw new Error(`${config} does not compile:\n${formatDiagnostics(result, 'text', config)}`);
  writeFileAtomic(out, result.bundle);
  return result.bundle;
}

/** `mtlsgate compile CONFIG -o OUT` through the built CLI; throws with its output on failure. */
export async function compileWithCli(config: string, out: string, extra: string[] = []): Promise<Buffer> {
  const r = await run(process.execPath, [CLI, 'compile', config, '-o', out, ...extra]);
  if (r.code !== 0) throw new Error(`mtlsgate compile exited ${r.code}:\n${r.stdout}${r.stderr}`);
  return readFileSync(out);
}

/** curl with a client certificate (or none); returns the status and body. */
export async function curl(url: string, pki: DemoPki, client: string | null, extra: string[] = []): Promise<{ status: number; body: string }> {
  const args = ['-sS', '--max-time', '20', '--cacert', join(pki.dir, 'ca.pem'), '-w', '\n%{http_code}', ...extra];
  if (client) args.push('--cert', join(pki.dir, `${client}.pem`), '--key', join(pki.dir, `${client}-key.pem`));
  args.push(url);
  const r = await run('curl', args);
  if (r.code !== 0) throw new Error(`curl ${url} failed (${r.code}): ${r.stderr}`);
  const nl = r.stdout.lastIndexOf('\n');
  return { status: Number(r.stdout.slice(nl + 1)), body: r.stdout.slice(0, nl) };
}

/** A keep-alive HTTPS agent of `maxSockets` connections presenting the demo client's certificate (NAME.pem, NAME-key.pem), trusting the demo CA. */
export function demoClientAgent(pki: DemoPki, client: string, maxSockets: number): Agent {
  return new Agent({
    keepAlive: true,
    maxSockets,
    ca: pki.ca.certPem,
    cert: readFileSync(join(pki.dir, `${client}.pem`)),
    key: readFileSync(join(pki.dir, `${client}-key.pem`)),
  });
}

/** One mTLS keep-alive connection (maxSockets 1); records every socket it used. */
export function keepAliveClient(pki: DemoPki, client: string) {
  const agent = demoClientAgent(pki, client, 1);
  const sockets = new Set<Socket>();
  const get = (url: string): Promise<{ status: number; body: string }> =>
    new Promise((resolveGet, reject) => {
      const req = request(url, { agent }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolveGet({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      });
      req.on('socket', (s: Socket) => sockets.add(s));
      req.on('error', reject);
      req.end();
    });
  return { get, sockets, close: () => agent.destroy() };
}

/** The gateway in this process, logging into `logs` (parsed JSON lines). */
export async function startInProcess(cfg: Partial<RuntimeConfig> & Pick<RuntimeConfig, 'bundle'>, pki: DemoPki) {
  const sink = new PassThrough();
  const logs: Array<Record<string, unknown>> = [];
  sink.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line));
  });
  const running: RunningGateway = await startGateway({
    tlsCertFile: join(pki.dir, 'server.pem'),
    tlsKeyFile: join(pki.dir, 'server-key.pem'),
    listen: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    drainTimeoutMs: 5_000,
    pollIntervalMs: 5_000,
    onLimiterError: 'allow',
    logger: createLogger({ destination: sink, level: 'debug' }),
    ...cfg,
  });
  const base = `https://127.0.0.1:${running.gatewayAddress.port}`;
  const admin = `http://127.0.0.1:${running.adminAddress!.port}`;
  const health = async () =>
    (await (await fetch(`${admin}/health`)).json()) as {
      status: string;
      bundle: { digest: string };
      last_reload_error: { message: string } | null;
    };
  return { running, base, admin, health, logs };
}

/** `node dist/mtlsgate.mjs serve ...` (or another copy of the CLI) as a child process; collects its output. */
export function spawnServe(args: string[], env: NodeJS.ProcessEnv = process.env, cli = CLI) {
  const child: ChildProcess = spawn(process.execPath, [cli, 'serve', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('exit', (code, signal) => r({ code, signal })));
  return {
    child,
    exited,
    output: () => ({ stdout, stderr }),
    /** The JSON log lines so far. */
    lines: () =>
      stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    /** Resolves with the "mtlsgate serving" line once the gateway listens. */
    serving: () =>
      waitFor(
        'mtlsgate serving',
        () => {
          if (child.exitCode !== null) throw new Error(`serve exited ${child.exitCode}:\n${stdout}${stderr}`);
          return stdout
            .split('\n')
            .filter((l) => l.startsWith('{'))
            .map((l) => JSON.parse(l) as Record<string, unknown>)
            .find((l) => l.msg === 'mtlsgate serving');
        },
        30_000,
        50,
      ),
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}
