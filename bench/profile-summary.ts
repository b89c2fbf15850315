// Where the time goes in a V8 CPU profile (`node --cpu-prof`): self time by function and by
// module, top N. Used to explain a slow row in RESULTS.md.
// Usage: node --import tsx bench/profile-summary.ts FILE.cpuprofile [N=25]
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const [file, topArg] = process.argv.slice(2);
if (!file) {
  console.error('usage: node --import tsx bench/profile-summary.ts FILE.cpuprofile [N]');
  process.exit(2);
}
const top = Number(topArg ?? 25);
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const selfUs = new Map<number, number>();
profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
const total = [...selfUs.values()].reduce((a, b) => a + b, 0);

const byFunction = new Map<string, number>();
const byModule = new Map<string, number>();
for (const [id, us] of selfUs) {
  const f = byId.get(id)!.callFrame;
  const where = f.url ? f.url.replace(/^file:\/\//, '').replace(/.*node_modules\//, 'node_modules/') : '(native)';
  const fn = `${f.functionName || '(anonymous)'} ${where}${f.url ? ':' + (f.lineNumber + 1) : ''}`;
  byFunction.set(fn, (byFunction.get(fn) ?? 0) + us);
  const mod = where.startsWith('node:') ? where : where.startsWith('node_modules/') ? where.split('/').slice(0, 2).join('/') : where;
  byModule.set(mod, (byModule.get(mod) ?? 0) + us);
}
const show = (title: string, m: Map<string, number>) => {
  console.log(`\n${title} (self time, ${(total / 1e6).toFixed(2)} s sampled)`);
  for (const [k, us] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${((us / total) * 100).toFixed(1).padStart(5)}%  ${k}`);
};
show('by function', byFunction);
show('by module', byModule);
