// Names the JIT code in a callgrind profile of node. Callgrind knows no symbols for code V8
// generated at run time and lists each piece as `???:0x...`; run with `node --perf-basic-prof`,
// V8 writes /tmp/perf-PID.map (start, size, name of every code object it made), and this
// script sums the self cost of those addresses by JavaScript function, so a profile says
// which of our functions cost what, and which call the runtime's generic property lookups.
//
//   node bench/callgrind-jit-names.mjs [--inclusive] CALLGRIND_OUT PERF_MAP [REQUESTS] [TOP]
//     REQUESTS     divide by this (per-request figures; default 1)
//     TOP          rows to print (default 40)
//     --inclusive  each function with what it calls (callgrind's inclusive cost) instead of its
//                  own: what one step of the request path costs in all (a handler, a stage)
// Also lists, for Builtins_LoadIC / KeyedLoadIC_Megamorphic / LoadIC_Megamorphic, the named
// functions calling them most (from callgrind_annotate --tree=caller).
// Code V8 moved after writing the map (rare: code-space compaction) is counted as unnamed.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
const inclusive = args.includes('--inclusive');
const [cgFile, mapFile, requestsArg, topArg] = args.filter((a) => a !== '--inclusive');
if (!cgFile || !mapFile) {
  console.error('usage: node bench/callgrind-jit-names.mjs CALLGRIND_OUT PERF_MAP [REQUESTS] [TOP]');
  process.exit(2);
}
const requests = Number(requestsArg ?? 1);
const top = Number(topArg ?? 40);

/** Code ranges from the perf map, sorted by start; a later entry for the same start wins. */
const ranges = readFileSync(mapFile, 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((line) => {
    const [start, size, ...name] = line.split(' ');
    return { start: Number.parseInt(start, 16), end: Number.parseInt(start, 16) + Number.parseInt(size, 16), name: name.join(' ') };
  })
  .sort((a, b) => a.start - b.start);

function nameOf(addr) {
  let lo = 0;
  let hi = ranges.length - 1;
  let best = null;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (ranges[mid].start <= addr) {
      best = ranges[mid];
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return best !== null && addr < best.end ? best.name : 'JIT (unnamed)';
}

const label = (fn) => {
  const m = /^\?\?\?:0x([0-9a-f]+)/.exec(fn);
  return m ? nameOf(Number.parseInt(m[1], 16)) : fn.replace(/ \[\/usr\/.*\]$/, '');
};

const annotate = (...args) => execFileSync('callgrind_annotate', ['--threshold=100', '--auto=no', ...args, cgFile], { encoding: 'utf8', maxBuffer: 1 << 28 });

const self = new Map();
for (const line of annotate(`--inclusive=${inclusive ? 'yes' : 'no'}`).split('\n')) {
  const m = /^\s*([\d,]+) \([^)]*\)\s+(.*)$/.exec(line);
  if (!m || m[2].includes('PROGRAM TOTALS')) continue;
  const name = label(m[2]);
  self.set(name, (self.get(name) ?? 0) + Number(m[1].replaceAll(',', '')));
}
const fmt = (v) => (v / requests).toFixed(0).padStart(9);
console.log(`${inclusive ? 'inclusive' : 'self'} Ir${requests > 1 ? ' per request' : ''}, by function (JIT code named from ${mapFile})`);
for (const [name, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${fmt(v)}  ${name.slice(0, 140)}`);

// Who calls the generic lookups: the caller tree's "<" lines above each "*" line.
const tree = annotate('--tree=caller', '--inclusive=no').split('\n');
for (const target of ['Builtins_LoadIC ', 'Builtins_LoadIC_Megamorphic ', 'Builtins_KeyedLoadIC_Megamorphic ', 'Builtins_LoadICTrampoline ']) {
  const at = tree.findIndex((l) => /^\s*[\d,]+ .*\* /.test(l) && l.includes(`???:${target}`));
  if (at === -1) continue;
  const callers = new Map();
  for (let i = at - 1; i >= 0 && /^\s*[\d,]+ .*< /.test(tree[i]); i--) {
    const m = /^\s*([\d,]+) \([^)]*\)\s+< (\S+)/.exec(tree[i]);
    if (!m) continue;
    const name = label(m[2]);
    callers.set(name, (callers.get(name) ?? 0) + Number(m[1].replaceAll(',', '')));
  }
  console.log(`\ncallers of ${target.trim()} (Ir spent in it, by caller)`);
  for (const [name, v] of [...callers].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`${fmt(v)}  ${name.slice(0, 140)}`);
}
