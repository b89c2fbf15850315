// Builds the CLI into one self-contained ESM file: dist/mtlsgate.mjs runs with plain `node`,
// no node_modules needed. The JSON schemas are inlined by the bundler (import ... with json).
import { build } from 'esbuild';

await build({
  entryPoints: ['cli/main.ts'],
  outfile: 'dist/mtlsgate.mjs',
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
