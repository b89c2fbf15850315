// The machine a run was taken on, for the report: results only compare within one run.
import { spawnSync } from 'node:child_process';
import { cpus, loadavg, totalmem } from 'node:os';
import { CORES, PINNING, SERVER_CORE, CLIENT_CORE, which } from './proc.ts';

export interface Machine {
  date: string;
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  node: string;
  /** OpenSSL that Node was built with, and the system one (NGINX, HAProxy, ab use it). */
  nodeOpenssl: string;
  systemOpenssl: string;
  peers: Record<string, string>;
  pinning: string;
  loadAverageAtStart: number[];
  gitCommit: string;
}

function out(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.trim();
}

function peerVersion(bin: string, args: string[], re: RegExp): string {
  if (!which(bin)) return 'not installed';
  return re.exec(out(bin, args))?.[1] ?? '?';
}

export function describeMachine(root: string): Machine {
  return {
    date: new Date().toISOString(),
    cpuModel: cpus()[0]?.model ?? '?',
    cores: CORES,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: out('uname', ['-sr']),
    node: process.version,
    nodeOpenssl: process.versions.openssl,
    systemOpenssl: which('openssl') ? out('openssl', ['version']).split(' ').slice(0, 2).join(' ') : 'not installed',
    peers: {
      nginx: peerVersion('nginx', ['-v'], /nginx\/(\S+)/),
      caddy: peerVersion('caddy', ['version'], /^(v?\S+)/),
      haproxy: peerVersion('haproxy', ['-v'], /version (\S+)/),
      ab: peerVersion('ab', ['-V'], /Version (\S+)/),
      'redis-server': peerVersion('redis-server', ['--version'], /v=(\S+)/),
    },
    pinning: PINNING
      ? `taskset: server on core ${SERVER_CORE}; load generator, upstream and bench driver on core ${CLIENT_CORE}`
      : 'no pinning (taskset missing or one core): server and client share the CPU',
    loadAverageAtStart: loadavg().map((l) => Math.round(l * 100) / 100),
    gitCommit: out('git', ['-C', root, 'rev-parse', '--short', 'HEAD']),
  };
}
