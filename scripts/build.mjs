// Builds the CLI into one self-contained ESM file: dist/mtlsgate.mjs runs with plain `node`,
// no node_modules needed. The JSON schemas are inlined by the bundler (import ... with json).
import { chmodSync, rmSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { _ } from 'ajv';
import standaloneModule from 'ajv/dist/standalone/index.js';
import { build } from 'esbuild';

// The schema validators, compiled here once instead of by every `compile` and `check` run
// (~200 ms of CPU each): compiler/schema.ts's own ajv set-up (schemaAjv, schemaValidatorOptions),
// loaded from a throwaway bundle of it, emits ajv's standalone code, which replaces
// compiler/schema-precompiled.ts in dist/.
async function precompiledValidators() {
  const tmp = 'dist/.schema-build.mjs';
  await build({ entryPoints: ['compiler/schema.ts'], outfile: tmp, bundle: true, platform: 'node', format: 'esm', packages: 'external', logLevel: 'warning' });
  try {
    const { schemaAjv, schemaValidatorOptions, KINDS } = await import(pathToFileURL(tmp).href);
    const ajv = schemaAjv({ ...schemaValidatorOptions, code: { source: true, esm: true, formats: _`require("ajv-formats/dist/formats").fullFormats` } });
    const standaloneCode = standaloneModule.default ?? standaloneModule;
    const code = standaloneCode(ajv, Object.fromEntries(KINDS.map((k) => [k, `${k}.schema.json`])));
    return `${code}\nexport const precompiled = { ${KINDS.join(', ')} };\n`;
  } finally {
    rmSync(tmp, { force: true });
  }
}
const validators = await precompiledValidators();
const precompiledSchemas = {
  name: 'precompiled-schemas',
  setup(b) {
    b.onLoad({ filter: /compiler[\\/]schema-precompiled\.ts$/ }, () => ({ contents: validators, loader: 'js', resolveDir: process.cwd() }));
  },
};

// The reload path verifies big bundles in a worker thread (runtime/bundle-worker-client.ts),
// and the compiler resolves a big config's key files in worker threads
// (compiler/parallel-keys.ts), and the portal's full compiles run in one
// (compiler/full-compile-client.ts): their entry points are built beside the CLI, as
// dist/bundle-worker.mjs, dist/crl-worker.mjs (large CRLs: runtime/crl-worker-client.ts),
// dist/keys-worker.mjs and dist/full-compile-worker.mjs
// (common/worker-thread.ts starts them).
const entries = [
  ['cli/main.ts', 'dist/mtlsgate.mjs'],
  ['runtime/bundle-worker.ts', 'dist/bundle-worker.mjs'],
  ['runtime/crl-worker.ts', 'dist/crl-worker.mjs'],
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
    plugins: [precompiledSchemas],
    // Some CommonJS dependencies (pino, ioredis) call require(); give the ESM bundle one.
    banner: {
      js: "#!/usr/bin/env node\nimport { createRequire as __mtlsgateCreateRequire } from 'node:module';\nconst require = __mtlsgateCreateRequire(import.meta.url);",
    },
  });
// The CLI runs as ./dist/mtlsgate.mjs (and as the package's bin) thanks to its #! line.
chmodSync('dist/mtlsgate.mjs', 0o755);
