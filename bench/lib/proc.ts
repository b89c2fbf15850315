// Child processes for the bench: started pinned to a core with taskset, stopped by PID (never by
// name), with their CPU time and memory read from /proc.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** Core the contender runs on, and core the load generator (and the upstream) run on. */
export const SERVER_CORE = 0;
export const CLIENT_CORE = 1;

const HAS_TASKSET = existsSync('/usr/bin/taskset') && spawnSync('taskset', ['-c', '0', 'true']).status === 0;
export const CORES = Number(spawnSync('nproc').stdout?.toString().trim()) || 1;
/** Pinning only makes sense with two cores or more. */
export const PINNING = HAS_TASKSET && CORES >= 2;

/** Every core of the machine, as taskset writes a list ("0-1"). */
export const ALL_CORES = CORES > 1 ? `0-${CORES - 1}` : '0';

/** `core`: one core, or a taskset list of cores ("0-1", "0,2"). */
export function pinned(core: number | string, cmd: string, args: string[]): [string, string[]] {
  return PINNING ? ['taskset', ['-c', String(core), cmd, ...args]] : [cmd, args];
}

export function which(bin: string): string | null {
  const r = spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' });
  const path = r.stdout.trim();
  return r.status === 0 && path ? path : null;
}

export interface Proc {
  name: string;
  child: ChildProcess;
  pid: number;
  /** Resolves with the exit code (or signal) when the process ends. */
  exited: Promise<number | string>;
  stop(): Promise<void>;
}

/** Starts `cmd args` pinned on `core`; stdout/stderr go to `logFile`. */
export function startProc(name: string, core: number, cmd: string, args: string[], opts: { logFile: string; env?: NodeJS.ProcessEnv; cwd?: string }): Proc {
  const [c, a] = pinned(core, cmd, args);
  // The child writes its output straight to the file: piping it through this process would
  // put the bench's own CPU on the measured path.
  const logFd = openSync(opts.logFile, 'w');
  const child = spawn(c, a, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  if (child.pid === undefined) throw new Error(`${name}: could not start ${cmd}`);
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, sig) => resolve(code ?? sig ?? 'unknown')));
  const pid = child.pid;
  return {
    name,
    child,
    pid,
    exited,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      process.kill(pid, 'SIGTERM');
      const t = setTimeout(() => {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }, 5000);
      await exited;
      clearTimeout(t);
    },
  };
}

/** Waits until a TCP port accepts connections, or the process exits, or the deadline passes. */
export async function waitForPort(port: number, proc: Proc, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let gone = false;
  void proc.exited.then(() => (gone = true));
  while (Date.now() < deadline) {
    if (gone) throw new Error(`${proc.name} exited before listening on ${port}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`${proc.name} did not listen on ${port} within ${timeoutMs} ms`);
}

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK']).stdout?.toString().trim()) || 100;

/** Parent pid and utime+stime (clock ticks) of one process, from /proc/<pid>/stat. */
function statOf(pid: number): { ppid: number; ticks: number } | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the ")" that closes the command name: state ppid ... utime(14) stime(15).
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) };
  } catch {
    return null;
  }
}

/** The process and all its descendants (NGINX and HAProxy fork workers; taskset execs). */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const st = statOf(Number(d));
    if (st) children.set(st.ppid, [...(children.get(st.ppid) ?? []), Number(d)]);
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length) {
    const p = queue.shift()!;
    out.push(p);
    queue.push(...(children.get(p) ?? []));
  }
  return out;
}

/** CPU seconds used so far by a process tree. */
export function cpuSeconds(root: number): number {
  let ticks = 0;
  for (const p of processTree(root)) ticks += statOf(p)?.ticks ?? 0;
  return ticks / CLK_TCK;
}

/**
 * CPU seconds used so far by one process's main thread (the thread whose id is the pid) and by
 * all its other threads (worker threads, V8's GC helpers, the libuv pool), from /proc/<pid>/task.
 */
export function threadCpuSeconds(pid: number): { main: number; others: number } {
  let main = 0;
  let others = 0;
  try {
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      try {
        const s = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
        const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
        const ticks = Number(f[11]) + Number(f[12]);
        if (Number(t) === pid) main += ticks;
        else others += ticks;
      } catch {
        /* the thread ended */
      }
    }
  } catch {
    /* exited */
  }
  return { main: main / CLK_TCK, others: others / CLK_TCK };
}

/** CPU seconds used so far by one process (not its children). */
export function processCpuSeconds(pid: number): number {
  return (statOf(pid)?.ticks ?? 0) / CLK_TCK;
}

/** Busy and total jiffies of one core since boot, from /proc/stat. */
export function coreTicks(core: number): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`cpu${core} `));
  if (!line) return { busy: 0, total: 0 };
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
  const busy = user + nice + system + irq + softirq + steal;
  return { busy, total: busy + idle + iowait };
}

/** A field of /proc/<pid>/status in KiB (VmRSS, VmHWM), summed over the process tree. */
export function memKiB(root: number, field: 'VmRSS' | 'VmHWM'): number {
  let kib = 0;
  for (const p of processTree(root)) {
    try {
      const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${p}/status`, 'utf8'));
      if (m) kib += Number(m[1]);
    } catch {
      /* exited */
    }
  }
  return kib;
}

const GNU_TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : null;
const TIME_MARK = 'BENCH_RUSAGE';

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** user+system CPU seconds of the command (from GNU time; null without it). */
  cpuSeconds: number | null;
  /** Peak RSS of the command in KiB (GNU time's maximum resident set size; null without it). */
  maxRssKiB: number | null;
  wallMs: number;
}

/** Runs a command to completion pinned on `core`, capturing output and rusage; killed after `timeoutMs`. */
export function runPinned(
  core: number | string,
  cmd: string,
  args: string[],
  timeoutMs: number,
  opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<RunResult> {
  const inner: [string, string[]] = GNU_TIME ? [GNU_TIME, ['-f', `${TIME_MARK} %U %S %M`, cmd, ...args]] : [cmd, args];
  const [c, a] = pinned(core, inner[0], inner[1]);
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(c, a, { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env, cwd: opts.cwd });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(killer);
      const m = new RegExp(`^${TIME_MARK} ([\\d.]+) ([\\d.]+) (\\d+)$`, 'm').exec(stderr);
      if (m)
        stderr = stderr
          .replace(m[0], '')
          .replace(/^Command (exited with non-zero status|terminated by signal) \d+$/m, '')
          .trimEnd();
      resolve({
        code,
        stdout,
        stderr,
        cpuSeconds: m ? Number(m[1]) + Number(m[2]) : null,
        maxRssKiB: m ? Number(m[3]) : null,
        wallMs: Date.now() - started,
      });
    });
  });
}

export { sleep };

/** Counters of a process tree that do not depend on how busy the machine is: read/write-family
 *  system calls (/proc/<pid>/io syscr + syscw) and context switches of every thread. */
export function treeCounters(root: number): { syscalls: number; voluntary: number; involuntary: number } {
  const out = { syscalls: 0, voluntary: 0, involuntary: 0 };
  for (const p of processTree(root)) {
    try {
      const io = readFileSync(`/proc/${p}/io`, 'utf8');
      out.syscalls += Number(/^syscr: (\d+)/m.exec(io)?.[1] ?? 0) + Number(/^syscw: (\d+)/m.exec(io)?.[1] ?? 0);
      for (const t of readdirSync(`/proc/${p}/task`)) {
        const st = readFileSync(`/proc/${p}/task/${t}/status`, 'utf8');
        out.voluntary += Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(st)?.[1] ?? 0);
        out.involuntary += Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(st)?.[1] ?? 0);
      }
    } catch {
      /* exited */
    }
  }
  return out;
}

/** Moves a running process, every thread of it, onto `cores` (one core or a taskset list);
 *  threads it starts later inherit the mask. Returns the list the kernel now allows. */
export function setAffinity(pid: number, cores: number | string): string {
  if (PINNING) {
    const r = spawnSync('taskset', ['-a', '-p', '-c', String(cores), String(pid)], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`taskset -a -p -c ${cores} ${pid}: ${r.stderr.trim()}`);
  }
  return allowedCores(pid);
}

/** The cores a process may run on (Cpus_allowed_list of /proc/<pid>/status). */
function allowedCores(pid: number): string {
  try {
    return /^Cpus_allowed_list:\s+(\S+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '?';
  } catch {
    return '?';
  }
}
