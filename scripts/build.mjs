// Builds the CLI into one self-contained ESM file: dist/mtlsgate.mjs runs with plain `node`,
// no node_modules needed. The JSON schemas are inlined by the bundler (import ... with json).
import { chmodSync } from 'node:fs';
import { build } from 'esbuild';

// The reload path verifies big bundles in a worker thread (runtime/bundle-worker-client.ts),
// and the compiler resolves a big config's key files in worker threads
// (compiler/parallel-keys.ts), and the portal's full compiles run in one
// (compiler/full-compile-client.ts): their entry points are built beside the CLI, as
// dist/bundle-worker.mjs, dist/keys-worker.mjs and dist/full-compile-worker.mjs
// (common/worker-thread.ts starts them).
const entries = [
  ['cli/main.ts', 'dist/mtlsgate.mjs'],
  ['runtime/bundle-worker.ts', 'dist/bundle-worker.mjs'],
  ['compiler/keys-worker.ts', 'dist/keys-worker.mjs'],
  ['compiler/full-compile-worker.ts', 'dist/full-compile-worker.mjs'],
];
for (const [entry, outfile] of entries)
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    sourcemap: 'linked',
    legalComments: 'none',
    logLevel: 'warning',
    // Some CommonJS dependencies (pino, ioredis) call require(); give the ESM bundle one.
    banner: {
      js: "#!/usr/bin/env node\nimport { createRequire as __mtlsgateCreateRequire } from 'node:module';\nconst require = __mtlsgateCreateRequire(import.meta.url);",
    },
  });
// The CLI runs as ./dist/mtlsgate.mjs (and as the package's bin) thanks to its #! line.
chmodSync('dist/mtlsgate.mjs', 0o755);
