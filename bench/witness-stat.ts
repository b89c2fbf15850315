// The witness check's stat (compiler/witness-check.ts) at scale, one thread, each way of taking
// the four numbers it compares (size, mtimeMs, ctimeMs, ino) for every certificate file of a
// generated config (bench/gen-config.ts: certs/NNN/key-NNNNNN.pem):
//   node bench/witness-stat.ts CONFIG_DIR [ROUNDS]   (plain node: no tsx, no deprecation flags)
// Prints ms per way and round; the first round warms the dentry cache.
import { readdirSync, statSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';

const dir = process.argv[2];
const rounds = Number(process.argv[3] ?? 3);
const certDirs = readdirSync(join(dir, 'certs'), { withFileTypes: true })
  .filter((e) => e.isDirectory())
  .map((e) => join(dir, 'certs', e.name));
const paths = certDirs.flatMap((d) => readdirSync(d).map((n) => join(d, n)));
console.log(`${paths.length} files in ${certDirs.length} directories`);

let sink = 0;
const NO_THROW = { throwIfNoEntry: false } as const;
const BIG = { throwIfNoEntry: false, bigint: true } as const;
// biome-ignore lint/suspicious/noExplicitAny: the deprecated binding has no types
const binding = (process as any).binding('fs');

const ways: Record<string, () => void | Promise<void>> = {
  'process.binding(fs).stat (now)': () => {
    for (const p of paths) {
      const v = binding.stat(p, false, undefined, false);
      sink += v[8] + v[7] + v[12] * 1e3 + v[13] / 1e6 + v[14] * 1e3 + v[15] / 1e6;
    }
  },
  'statSync {throwIfNoEntry:false}': () => {
    for (const p of paths) {
      const s = statSync(p, NO_THROW)!;
      sink += s.size + s.ino + s.mtimeMs + s.ctimeMs;
    }
  },
  'statSync {throwIfNoEntry:false, bigint:true}': () => {
    for (const p of paths) {
      const s = statSync(p, BIG)!;
      sink += Number(s.size) + Number(s.ino) + Number(s.mtimeNs) / 1e6 + Number(s.ctimeNs) / 1e6;
    }
  },
  'fs.promises.stat, 64 at a time': () => promised(64),
  'fs.promises.stat, 256 at a time': () => promised(256),
  'readdirSync withFileTypes + statSync per dir (no file stat)': () => {
    for (const d of certDirs) {
      sink += statSync(d).mtimeMs;
      sink += readdirSync(d, { withFileTypes: true }).length;
    }
  },
};

async function promised(bound: number): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: bound }, async () => {
      for (let i = next++; i < paths.length; i = next++) {
        const s = await stat(paths[i]);
        sink += s.size + s.ino + s.mtimeMs + s.ctimeMs;
      }
    }),
  );
}

for (let r = 0; r < rounds; r++) {
  for (const [name, run] of Object.entries(ways)) {
    const cpu = process.cpuUsage();
    const t = performance.now();
    await run();
    const ms = performance.now() - t;
    const c = process.cpuUsage(cpu);
    console.log(`round ${r} ${name}: ${Math.round(ms)} ms wall, ${Math.round(c.user / 1e3)}+${Math.round(c.system / 1e3)} ms cpu`);
  }
}
if (sink === 42) console.log('');
