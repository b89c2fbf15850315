// The schema validators compiled ahead of time, or null. From source (tsx, the tests in process)
// this module is null and compiler/schema.ts compiles each kind's validator with ajv on first use
// (~40 ms a kind). scripts/build.mjs replaces it in dist/ with ajv's standalone code for the same
// schemas and the same options (schemaValidatorOptions), so a `compile` or `check` run from the
// CLI does not compile them again on every start.
import type { ValidateFunction } from 'ajv/dist/2020.js';
import type { Kind } from './schema.ts';

export const precompiled: Record<Kind, ValidateFunction> | null = null;
