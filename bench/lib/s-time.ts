// `openssl s_time -reuse`: connections that resume a TLS session (session tickets), each sending
// one request and reading the answer, one at a time per process; several processes in
// parallel. ab cannot resume sessions, so this is the resumed-handshake counterpart of its
// full-handshake runs. The bytes read per connection are compared with a full-handshake
// connection's, so a server answering resumed connections differently (e.g. losing the client
// certificate) is caught.
import { CLIENT_CORE, runPinned } from './proc.ts';

export interface STimeRun {
  host: string;
  port: number;
  path: string;
  cert: string;
  key: string;
  durationS: number;
  processes: number;
}

export interface STimeResult {
  connections: number;
  perSecond: number;
  bytesPerConnection: number;
  /** Bytes per connection on a fresh (full handshake) connection, the reference. */
  fullHandshakeBytesPerConnection: number;
  clientCpu: number | null;
}

async function sTime(run: STimeRun, mode: '-new' | '-reuse', durationS: number) {
  const args = ['s_time', '-connect', `${run.host}:${run.port}`, '-cert', run.cert, '-key', run.key, mode, '-time', String(durationS), '-www', run.path];
  const r = await runPinned(CLIENT_CORE, 'openssl', args, (durationS + 30) * 1000);
  const m = /(\d+) connections in [\d.]+ real seconds, (\d+) bytes read per connection/.exec(r.stdout);
  if (!m) throw new Error(`openssl s_time ${mode} gave no result (exit ${r.code}): ${(r.stderr || r.stdout).trim().slice(-300)}`);
  return { connections: Number(m[1]), bytesPerConnection: Number(m[2]), cpuSeconds: r.cpuSeconds };
}

export async function runResumed(run: STimeRun): Promise<STimeResult> {
  const reference = await sTime(run, '-new', 1);
  const started = Date.now();
  const all = await Promise.all(Array.from({ length: run.processes }, () => sTime(run, '-reuse', run.durationS)));
  const wallS = Math.max(run.durationS, (Date.now() - started) / 1000 - 0.2);
  const connections = all.reduce((n, r) => n + r.connections, 0);
  const bytes = all.map((r) => r.bytesPerConnection);
  const cpu = all.every((r) => r.cpuSeconds !== null) ? all.reduce((n, r) => n + r.cpuSeconds!, 0) : null;
  return {
    connections,
    perSecond: Math.round(connections / run.durationS),
    bytesPerConnection: Math.min(...bytes),
    fullHandshakeBytesPerConnection: reference.bytesPerConnection,
    clientCpu: cpu === null ? null : Math.round((cpu / wallS) * 1000) / 1000,
  };
}
