// What the portal's catalog compile costs (the config without DIR/keys/portal, compiled in the
// compile worker before the start-up compile so the request form shows its plans at once), on a
// config with many keys outside DIR/keys/portal (hand-written or imported key files, each key
// with its certificate file). Since session 15 it leaves key documents out once parsed
// (CompileOptions.withoutKeys): their certificate files are read once, by the full compile.
// Not part of `npm test`.
//
//   node --import tsx bench/portal-catalog.ts [--keys 20000] [--with-keys]
//
// The config is bench/gen-config.ts's (10 APIs, 100 policies, --keys keys in files of 1,000,
// one certificate file each), cached in bench/.work/. Two runs in this process (cold, then warm
// file cache and JIT); --with-keys compiles the keys too (the catalog compile before session 15).
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { compileDirCapturing } from '../compiler/index.ts';
import { generateCompileConfig } from './gen-config.ts';

const { values } = parseArgs({ options: { keys: { type: 'string', default: '20000' }, 'with-keys': { type: 'boolean', default: false } } });
const keys = Number(values.keys);
const dir = resolve(import.meta.dirname, '.work', `portal-catalog-${keys}`);
await generateCompileConfig(dir, { apis: 10, keys }, (l) => console.log(l));
for (const run of ['cold', 'warm']) {
  const t = performance.now();
  const r = await compileDirCapturing(dir, { exclude: ['/keys/portal/'], keyWorkers: 0, withoutKeys: !values['with-keys'] });
  console.log(
    `${keys} keys outside keys/portal, ${values['with-keys'] ? 'keys compiled too (before session 15)' : 'without keys'}, ${run}: ${Math.round(performance.now() - t)} ms, ` +
      `errors ${r.errorCount}; stages ${JSON.stringify(r.timings)}`,
  );
}
