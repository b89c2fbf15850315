// Start-up of `mtlsgate serve` on a big bundle: the time from spawn until an HTTPS request to
// an API is answered (any HTTP status: the bundle is loaded and routing), and the process's
// resident memory then (VmRSS) and at its peak so far (VmHWM).
// Standalone: node --import tsx bench/lib/serve-startup.ts BUNDLE [PATH=/api-0000/]
import { request } from 'node:https';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchPki } from './pki.ts';
import { serveCommand } from './serve-command.ts';
import { cpuSeconds, memKiB, type Proc, SERVER_CORE, sleep, startProc } from './proc.ts';
import { freePort } from '../../common/listen.ts';

export interface ServeStartup {
  /** ms from spawn to the first HTTP answer on the HTTPS listener. */
  firstAnswerMs: number;
  /** CPU seconds (user+system) the process had used by then: on a shared machine, the part of the wait that was its own work. */
  cpuS: number;
  /** HTTP status of that answer. */
  status: number;
  rssMiB: number;
  peakRssMiB: number;
}

function answer(port: number, path: string): Promise<number> {
  return new Promise((resolveStatus) => {
    const req = request({ host: '127.0.0.1', port, path, rejectUnauthorized: false, timeout: 2000 }, (res) => {
      res.resume();
      res.on('end', () => resolveStatus(res.statusCode ?? 0));
    });
    req.on('error', () => resolveStatus(0));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

export async function measureServeStartup(root: string, workDir: string, bundle: string, path = '/api-0000/', timeoutMs = 120_000): Promise<ServeStartup> {
  const pki = await benchPki(workDir, 'ec');
  const port = await freePort();
  const started = performance.now();
  const proc: Proc = startProc('serve', SERVER_CORE, process.execPath, [...serveCommand(root, bundle, pki, port, 'off'), '-q'], {
    logFile: join(workDir, 'serve-startup.log'),
  });
  try {
    let gone = false;
    void proc.exited.then(() => (gone = true));
    while (performance.now() - started < timeoutMs) {
      if (gone) throw new Error(`serve exited before answering (see ${join(workDir, 'serve-startup.log')})`);
      const status = await answer(port, path);
      if (status !== 0) {
        const firstAnswerMs = performance.now() - started;
        const cpuS = Math.round(cpuSeconds(proc.pid) * 10) / 10;
        await sleep(500); // let start-up garbage settle before reading the resident size
        return {
          firstAnswerMs: Math.round(firstAnswerMs),
          cpuS,
          status,
          rssMiB: Math.round(memKiB(proc.pid, 'VmRSS') / 1024),
          peakRssMiB: Math.round(memKiB(proc.pid, 'VmHWM') / 1024),
        };
      }
      await sleep(25);
    }
    throw new Error(`serve did not answer within ${timeoutMs} ms`);
  } finally {
    await proc.stop();
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const root = resolve(fileURLToPath(import.meta.url), '../../..');
  const [bundle, path] = process.argv.slice(2);
  if (!bundle) {
    console.error('usage: node --import tsx bench/lib/serve-startup.ts BUNDLE [PATH]');
    process.exit(2);
  }
  console.log(JSON.stringify(await measureServeStartup(root, join(root, 'bench', '.work'), resolve(bundle), path)));
}
