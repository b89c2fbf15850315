// Starts a real redis-server for a test: loopback only, a free port, no persistence, its own tmp
// dir. `stop()` and `start()` again on the SAME port simulate an outage and a recovery.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../common/listen.ts';

export const REDIS_SERVER = process.env.REDIS_SERVER ?? '/usr/bin/redis-server';

/** Sends one inline command and returns the raw reply text (enough for PING/INFO in tests). */
export async function redisCommand(port: number, command: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = createConnection({ host: '127.0.0.1', port });
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`redis ${command}: no reply within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.setEncoding('utf8');
    sock.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    sock.on('data', (chunk) => {
      buf += chunk;
      if (isCompleteReply(buf)) {
        clearTimeout(timer);
        sock.end();
        resolve(buf);
      }
    });
    sock.write(`${command}\r\n`);
  });
}

function isCompleteReply(buf: string): boolean {
  if (buf.startsWith('$')) {
    const eol = buf.indexOf('\r\n');
    if (eol < 0) return false;
    const len = Number(buf.slice(1, eol));
    return len < 0 || Buffer.byteLength(buf) >= eol + 2 + len + 2;
  }
  return buf.endsWith('\r\n');
}

/** INFO field value, e.g. infoField(port, 'stats', 'total_commands_processed'). */
export async function infoField(port: number, section: string, field: string): Promise<string | undefined> {
  const text = await redisCommand(port, `INFO ${section}`);
  const m = new RegExp(`^${field}:(.*)$`, 'm').exec(text);
  return m?.[1].trim();
}

/** `INFO commandstats` as command -> calls (commands run inside scripts included). */
export async function commandCalls(port: number): Promise<Map<string, number>> {
  const text = await redisCommand(port, 'INFO commandstats');
  const calls = new Map<string, number>();
  for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls.set(m[1], Number(m[2]));
  return calls;
}

/** Commands the limiter's script runs inside Redis (not round trips). */
const LIMIT_SCRIPT_INNER_COMMANDS = ['time', 'hmget', 'hset', 'pexpire'];

/**
 * Round trips (client -> server commands) between two commandstats snapshots: every command
 * counted, minus those the limiter script ran inside the server. `info` calls of the snapshots
 * themselves are excluded too.
 */
export function roundTripsBetween(before: Map<string, number>, after: Map<string, number>): number {
  let trips = 0;
  for (const [cmd, calls] of after) {
    if (LIMIT_SCRIPT_INNER_COMMANDS.includes(cmd) || cmd === 'info') continue;
    trips += calls - (before.get(cmd) ?? 0);
  }
  return trips;
}

export class RedisServer {
  private child: ChildProcess | null = null;
  private constructor(
    readonly port: number,
    readonly dir: string,
  ) {}

  private extraArgs: string[] = [];

  /** `extraArgs` are appended to the command line (e.g. cluster mode). */
  static async start(extraArgs: string[] = []): Promise<RedisServer> {
    const server = new RedisServer(await freePort(), mkdtempSync(join(tmpdir(), 'mtlsgate-redis-')));
    server.extraArgs = extraArgs;
    await server.start();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** (Re)starts the server on its port and waits until it answers PING. */
  async start(): Promise<void> {
    if (this.child !== null) return;
    const child = spawn(
      REDIS_SERVER,
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir, '--loglevel', 'warning', ...this.extraArgs],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    this.child = child;
    const exited = new Promise<never>((_, reject) =>
      child.once('exit', (code) => reject(new Error(`redis-server exited (${code}) on port ${this.port}: ${stderr}`))),
    );
    exited.catch(() => {});
    const deadline = Date.now() + 15_000;
    for (;;) {
      try {
        const reply = await Promise.race([redisCommand(this.port, 'PING', 1000), exited]);
        if (reply.startsWith('+PONG')) return;
      } catch (err) {
        if (child.exitCode !== null || Date.now() > deadline) throw err;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Kills the server (SIGKILL: an abrupt outage) and waits for it to be gone. */
  async stop(): Promise<void> {
    const child = this.child;
    if (child === null) return;
    this.child = null;
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await gone;
    }
  }

  /** SIGSTOP: the server keeps its sockets open but answers nothing (a hung host). */
  freeze(): void {
    this.child?.kill('SIGSTOP');
  }

  thaw(): void {
    this.child?.kill('SIGCONT');
  }

  async close(): Promise<void> {
    this.thaw();
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A 3-master Redis Cluster on loopback (no replicas), slots split evenly, built with plain
 * CLUSTER ADDSLOTSRANGE / MEET so it needs nothing beyond redis-server.
 */
export class RedisClusterServers {
  private constructor(readonly nodes: RedisServer[]) {}

  static async start(): Promise<RedisClusterServers> {
    const nodes: RedisServer[] = [];
    try {
      for (let i = 0; i < 3; i++)
        nodes.push(await RedisServer.start(['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000']));
      const ranges = [
        [0, 5460],
        [5461, 10922],
        [10923, 16383],
      ];
      for (let i = 0; i < 3; i++) await expectOk(nodes[i].port, `CLUSTER ADDSLOTSRANGE ${ranges[i][0]} ${ranges[i][1]}`);
      for (let i = 1; i < 3; i++) await expectOk(nodes[0].port, `CLUSTER MEET 127.0.0.1 ${nodes[i].port}`);
      const deadline = Date.now() + 20_000;
      for (const node of nodes) {
        while (
          (await infoLine(node.port, 'CLUSTER INFO', 'cluster_state')) !== 'ok' ||
          (await infoLine(node.port, 'CLUSTER INFO', 'cluster_known_nodes')) !== '3'
        ) {
          if (Date.now() > deadline) throw new Error(`cluster on ${node.port} did not become ok`);
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      return new RedisClusterServers(nodes);
    } catch (err) {
      for (const n of nodes) await n.close();
      throw err;
    }
  }

  get url(): string {
    return `redis+cluster://${this.nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}`;
  }

  async close(): Promise<void> {
    for (const n of this.nodes) await n.close();
  }
}

async function expectOk(port: number, command: string): Promise<void> {
  const reply = await redisCommand(port, command);
  if (!reply.startsWith('+OK')) throw new Error(`${command}: ${reply.trim()}`);
}

async function infoLine(port: number, command: string, field: string): Promise<string | undefined> {
  const text = await redisCommand(port, command);
  return new RegExp(`^${field}:(.*)$`, 'm').exec(text)?.[1].trim();
}
