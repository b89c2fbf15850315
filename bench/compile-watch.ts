// `compile --watch` at scale, alone (the compile section of bench/run.ts runs it too):
//   node --import tsx bench/compile-watch.ts [KEYS...]   (default 100000; 1,000 APIs each)
//   CACHE=DIR node --import tsx bench/compile-watch.ts KEYS   (`--watch --cache DIR`: prime DIR
//   first with `compile --cache DIR`, and give each KEYS its own DIR)
// The config is bench/gen-config.ts's, generated once into bench/.work/compile/config-1000-KEYS.
// Prints each row as JSON (bench/workloads/compile-watch.ts says what is measured).
import { join } from 'node:path';
import { generateCompileConfig } from './gen-config.ts';
import { standaloneContext } from './lib/context.ts';
import { runCompileWatchBench } from './workloads/compile-watch.ts';

const APIS = 1000;
const ctx = standaloneContext(join(import.meta.dirname, '..'), { seconds: 0, rounds: 0, connections: 0 });
for (const keys of (process.argv.length > 2 ? process.argv.slice(2) : ['100000']).map(Number)) {
  const config = await generateCompileConfig(ctx.dir('compile', `config-${APIS}-${keys}`), { apis: APIS, keys }, ctx.log);
  console.log(JSON.stringify(await runCompileWatchBench(ctx, config.dir, keys, process.env.CACHE), null, 2));
}
