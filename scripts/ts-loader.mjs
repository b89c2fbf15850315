// `node --import ./scripts/ts-loader.mjs FILE.ts` runs the repository's TypeScript from source,
// as `--import tsx` does but without tsx's start-up cost (scripts/ts-hooks.mjs says why); the
// test runner (scripts/run-tests.mjs) starts every test file this way.
import { register } from 'node:module';

process.setSourceMapsEnabled(true);
register('./ts-hooks.mjs', import.meta.url);
