// What the compile behind one portal page view costs (portal/context.ts catalogNow -> the live
// compile, compiler/live-compile.ts) on a generated config of N keys that also has a `kind: test`
// and a `kind: revocation` document, with nothing changed between views. Not part of `npm test`.
//
//   node --import tsx bench/live-view.ts [--keys 20000] [--views 10] [--root DIR]
//
// --root: the checkout measured (default: this one). Before session 12 such a config kept no
// state, so every view was a full compile; now a view with nothing changed answers from the last
// full result ('unchanged').
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { generateCompileConfig } from './gen-config.ts';

const { values } = parseArgs({
  options: {
    keys: { type: 'string', default: '20000' },
    views: { type: 'string', default: '10' },
    root: { type: 'string', default: resolve(import.meta.dirname, '..') },
  },
});
const keys = Number(values.keys);
const views = Number(values.views);
const gen = await generateCompileConfig(join(tmpdir(), `mtlsgate-live-view-gen-${keys}`), { apis: 50, keys });
const dir = mkdtempSync(join(tmpdir(), 'mtlsgate-live-view-'));
try {
  cpSync(gen.dir, dir, { recursive: true });
  writeFileSync(
    join(dir, 'checks.yaml'),
    `kind: revocation\nid: lost\ncertificates: ["sha256:${'ab'.repeat(32)}"]\n---\nkind: test\nid: view\ncases:\n  - request: { url: /api-0000/x, at: 2030-01-01T00:00:00Z }\n    expect: { status: 401 }\n`,
  );
  const { LiveCompiler } = (await import(
    pathToFileURL(join(values.root!, 'compiler', 'live-compile.ts')).href
  )) as typeof import('../compiler/live-compile.ts');
  const live = new LiveCompiler(dir);
  try {
    let started = performance.now();
    const first = await live.compile();
    if (first.errorCount > 0) throw new Error(JSON.stringify(first.diagnostics.slice(0, 3)));
    console.log(`first compile (${first.live}): ${Math.round(performance.now() - started)} ms`);
    const times: number[] = [];
    const modes: Record<string, number> = {};
    for (let v = 0; v < views; v++) {
      started = performance.now();
      const r = await live.compile();
      times.push(performance.now() - started);
      modes[r.live] = (modes[r.live] ?? 0) + 1;
    }
    times.sort((a, b) => a - b);
    const ms = (x: number) => `${x < 10 ? x.toFixed(2) : Math.round(x)} ms`;
    console.log(`${keys} keys, ${views} views, nothing changed: median ${ms(times[times.length >> 1]!)}, max ${ms(times.at(-1)!)}; ${JSON.stringify(modes)}`);
  } finally {
    live.close();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
