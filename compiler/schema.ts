// Stage 3: every document against schema/<kind>.schema.json (ajv, JSON Schema 2020-12). ajv's
// instancePath is mapped back to the YAML node; an unknown field points at the key itself and
// gets a "did you mean". Documents with other schema errors are dropped from later stages
// (their errors are already reported), so semantic checks only ever see well-typed values.
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import apiSchema from '../schema/api.schema.json' with { type: 'json' };
import policySchema from '../schema/policy.schema.json' with { type: 'json' };
import keySchema from '../schema/key.schema.json' with { type: 'json' };
import revocationSchema from '../schema/revocation.schema.json' with { type: 'json' };
import testSchema from '../schema/test.schema.json' with { type: 'json' };
import type { DiagnosticLog } from './diagnostics.ts';
import { excerpt } from './excerpt.ts';
import { locate, pointerToPath, type SourceDoc } from './source.ts';
import { precompiled } from './schema-precompiled.ts';
import { normaliseSeconds } from './seconds.ts';
import { didYouMean } from './suggest.ts';
import type { ApiDoc, KeyDoc, PolicyDoc, RevocationDoc, TestDoc } from './model.ts';

export const KINDS = ['api', 'policy', 'key', 'revocation', 'test'] as const;
export type Kind = (typeof KINDS)[number];

export interface TypedDocs {
  apis: ApiDoc[];
  policies: PolicyDoc[];
  keys: KeyDoc[];
  revocations: RevocationDoc[];
  /** Access tests: checked against the bundle, never part of it. */
  tests: TestDoc[];
  /**
   * Ids of documents that failed the schema. They exist, so a reference to one is not "unknown"
   * (that would be a second, misleading error); their own errors are already reported.
   */
  broken: Record<Kind, Set<string>>;
  /** The policy and key documents the schema refused, for checks that can still run on them. */
  refused: RefusedDoc[];
}

export interface RefusedDoc {
  kind: Kind;
  doc: SourceDoc;
  value: Record<string, unknown>;
}

// ajv-formats is CommonJS with a default export; under ESM interop it may arrive wrapped.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (ajv: Ajv2020) => void;

/** ajv's options; scripts/build.mjs compiles the validators ahead of time with the same. */
export const schemaValidatorOptions = { allErrors: true, verbose: true, strict: true } as const;

/** ajv with every kind's schema added (each compiled when first asked for); the build compiles them all from it. */
export function schemaAjv(options: ConstructorParameters<typeof Ajv2020>[0] = schemaValidatorOptions): Ajv2020 {
  const ajv = new Ajv2020(options);
  addFormats(ajv);
  ajv.addSchema(apiSchema, 'api.schema.json');
  ajv.addSchema(policySchema, 'policy.schema.json');
  ajv.addSchema(keySchema, 'key.schema.json');
  ajv.addSchema(revocationSchema, 'revocation.schema.json');
  ajv.addSchema(testSchema, 'test.schema.json');
  return ajv;
}

let ajv: Ajv2020 | undefined;
const validators = new Map<Kind, ValidateFunction>();
/**
 * The validator of one kind: compiled ahead of time in dist/ (compiler/schema-precompiled.ts),
 * else on first use: a worker thread resolving key files (compiler/key-file.ts) compiles the key
 * schema (and what it refers to) only.
 */
export function validatorOf(kind: Kind): ValidateFunction {
  let v = validators.get(kind) ?? precompiled?.[kind];
  if (v === undefined) {
    ajv ??= schemaAjv();
    v = ajv.getSchema(`${kind}.schema.json`)!;
    validators.set(kind, v);
  }
  return v;
}

/** "proxy.listen_path", "client_certificates[2]", or "document". */
function fieldName(path: readonly (string | number)[]): string {
  let out = '';
  for (const seg of path) out += typeof seg === 'number' ? `[${seg}]` : out === '' ? seg : `.${seg}`;
  return out === '' ? 'document' : out;
}

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  // JSON has no word for these (excerpt would say null): .inf, .nan, or a literal past 1.8e308.
  if (typeof v === 'number' && !Number.isFinite(v)) return Number.isNaN(v) ? 'NaN (.nan)' : `${v > 0 ? '' : '-'}infinity (.inf, or a number past 1.8e308)`;
  return `${typeof v} ${excerpt(v)}`;
}

const TYPE_WORDS: Record<string, string> = {
  object: 'a mapping',
  array: 'a list',
  string: 'a string',
  boolean: 'true or false',
  number: 'a number',
  integer: 'an integer',
};

/** The fix for the common YAML slips: a quoted true/false or number, an unquoted one. */
function typeHint(want: string, data: unknown, written: string | null): string {
  if (typeof data === 'string') {
    const t = data.trim();
    if (want === 'boolean' && /^(true|false)$/i.test(t)) return ` (remove the quotes: ${t.toLowerCase()})`;
    // YAML 1.1 (older Kubernetes tooling, Ansible) read these as booleans; YAML 1.2 reads strings.
    if (want === 'boolean' && /^(yes|no|on|off|y|n)$/i.test(t))
      return ` (YAML 1.2 reads ${t} as a string, not a boolean: write ${/^(yes|on|y)$/i.test(t) ? 'true' : 'false'})`;
    if ((want === 'number' || want === 'integer') && t !== '' && Number.isFinite(Number(t))) return ` (remove the quotes: ${t})`;
    return '';
  }
  // Quote what was written: the parsed number of a 64-digit token_sha256 is 1.1111111111111112e+63.
  if (want === 'string' && (typeof data === 'number' || typeof data === 'boolean')) return ` (quote it: "${written ?? String(data)}")`;
  return '';
}

/** The unquoted scalar as written at `path` (up to a space, comma, bracket or comment), or null. */
function plainScalarAt(doc: SourceDoc, path: (string | number)[]): string | null {
  const at = locate(doc.root, path);
  const text = doc.file.text.slice(at, at + 400);
  return /^[^\s,\]}#'"]+/.exec(text)?.[0] ?? null;
}

/** Field names one level below each object property of `schema` (for "belongs under" hints). */
function nestedFields(schema: Record<string, unknown>): Map<string, string> {
  const out = new Map<string, string>();
  const props = (schema.properties ?? {}) as Record<string, Record<string, unknown>>;
  for (const [parent, sub] of Object.entries(props)) {
    for (const child of Object.keys((sub.properties ?? {}) as object)) out.set(child, parent);
  }
  return out;
}

function report(doc: SourceDoc, kind: Kind, err: ErrorObject, log: DiagnosticLog, sameValue: ErrorObject[] = []): void {
  const path = pointerToPath(err.instancePath);
  const field = fieldName(path);
  const parentSchema = (err.parentSchema ?? {}) as Record<string, unknown>;
  const site = (p: (string | number)[], atKey = false) => ({ file: doc.file, offset: locate(doc.root, p, atKey) });
  switch (err.keyword) {
    case 'additionalProperties': {
      const name = String((err.params as { additionalProperty: string }).additionalProperty);
      const known = Object.keys((parentSchema.properties ?? {}) as object);
      let hint = didYouMean(name, known);
      const under = path.length === 0 ? nestedFields(parentSchema).get(name) : undefined;
      if (under) hint = ` (it belongs under ${under}:)`;
      const where = path.length === 0 ? (kind === 'api' ? 'an api' : `a ${kind}`) : field;
      log.report('E_UNKNOWN_FIELD', site([...path, name], true), `unknown field ${excerpt(name)} in ${where}${hint}`);
      return;
    }
    case 'required':
    case 'dependentRequired': {
      const missing = String((err.params as { missingProperty: string }).missingProperty);
      if (err.keyword === 'dependentRequired') {
        // Point at the field that needs the missing one ("rate" without "per").
        const property = String((err.params as { property: string }).property);
        log.report('E_MISSING_FIELD', site([...path, property], true), `${fieldName([...path, property])} needs "${missing}" too`);
        return;
      }
      log.report('E_MISSING_FIELD', site(path), `${path.length === 0 ? kind : field} is missing required field "${missing}"`);
      return;
    }
    case 'anyOf': {
      // One message for a field of several forms (its branches' errors were dropped): the forms
      // it takes, from the field's title, and what it got.
      const forms = typeof parentSchema.title === 'string' ? parentSchema.title : 'one of the forms docs/config.md lists';
      const quoted =
        typeof err.data === 'string' && err.data.trim() !== '' && Number.isFinite(Number(err.data)) ? ` (remove the quotes: ${err.data.trim()})` : '';
      log.report('E_FIELD_TYPE', site(path), `${field} must be ${forms}, got ${typeOf(err.data)}${quoted}`);
      return;
    }
    case 'type': {
      const want = String((err.params as { type: string }).type);
      const hint = typeHint(want, err.data, plainScalarAt(doc, path));
      log.report('E_FIELD_TYPE', site(path), `${field} must be ${TYPE_WORDS[want] ?? want}, got ${typeOf(err.data)}${hint}`);
      return;
    }
    case 'const':
      log.report('E_FIELD_VALUE', site(path), `${field} must be ${JSON.stringify((err.params as { allowedValue: unknown }).allowedValue)}`);
      return;
    default: {
      const described = typeof parentSchema.description === 'string' ? `: ${parentSchema.description}` : '';
      // Every rule the value breaks, in one message (target_url "host:8080" fails format and
      // pattern), sorted: ajv's order differs between its compiled and standalone validators.
      const rules = [err, ...sameValue]
        .map((e) => e.message)
        .sort()
        .join('; ');
      log.report('E_FIELD_VALUE', site(path), `${field} ${excerpt(err.data)} is not valid (${rules})${described}`);
    }
  }
}

/** ajv reports each failed branch of an anyOf and then the anyOf: keep the anyOf alone (report() words it). */
function withoutAnyOfBranches(errors: ErrorObject[]): ErrorObject[] {
  const anyOf = errors.filter((e) => e.keyword === 'anyOf');
  if (anyOf.length === 0) return errors;
  return errors.filter((e) => !anyOf.some((a) => e.instancePath === a.instancePath && e.schemaPath.startsWith(`${a.schemaPath}/`)));
}

/** Keywords report() words on their own; every other keyword is a rule on the value (pattern, format, minimum, ...). */
const OWN_MESSAGE = new Set(['additionalProperties', 'required', 'dependentRequired', 'anyOf', 'type', 'const']);

/**
 * Each error with the other value rules broken by the same value: one diagnostic per value, not
 * one per rule at the same line:col.
 */
function valueRulesTogether(errors: ErrorObject[]): [ErrorObject, ErrorObject[]][] {
  const out: [ErrorObject, ErrorObject[]][] = [];
  const byValue = new Map<string, ErrorObject[]>();
  for (const err of errors) {
    if (OWN_MESSAGE.has(err.keyword)) {
      out.push([err, []]);
      continue;
    }
    const others = byValue.get(err.instancePath);
    if (others !== undefined) others.push(err);
    else {
      const sameValue: ErrorObject[] = [];
      byValue.set(err.instancePath, sameValue);
      out.push([err, sameValue]);
    }
  }
  return out;
}

/** Validates every document; returns the valid ones, typed and grouped by kind. */
export function validateDocs(docs: SourceDoc[], log: DiagnosticLog): TypedDocs {
  const out: TypedDocs = {
    apis: [],
    policies: [],
    keys: [],
    revocations: [],
    tests: [],
    broken: { api: new Set(), policy: new Set(), key: new Set(), revocation: new Set(), test: new Set() },
    refused: [],
  };
  for (const doc of docs) {
    const value = doc.value;
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      log.report(
        'E_FIELD_TYPE',
        { file: doc.file, offset: doc.root.offset },
        `a document must be a mapping starting with kind: api, policy, key, revocation or test; got ${typeOf(value)}`,
      );
      continue;
    }
    const kind = (value as { kind?: unknown }).kind;
    if (kind === undefined) {
      log.report(
        'E_KIND',
        { file: doc.file, offset: doc.root.offset },
        'document has no kind (add kind: api, kind: policy, kind: key, kind: revocation or kind: test)',
      );
      continue;
    }
    if (typeof kind !== 'string' || !(KINDS as readonly string[]).includes(kind)) {
      const hint = typeof kind === 'string' ? didYouMean(kind, KINDS) : '';
      log.report(
        'E_KIND',
        { file: doc.file, offset: locate(doc.root, ['kind']) },
        `unknown kind ${excerpt(kind)}: must be api, policy, key, revocation or test${hint}`,
      );
      continue;
    }
    const validate = validatorOf(kind as Kind);
    normaliseSeconds(kind, value as Record<string, unknown>);
    if (!validate(value)) {
      const errors = withoutAnyOfBranches(validate.errors ?? []);
      for (const [err, sameValue] of valueRulesTogether(errors)) report(doc, kind as Kind, err, log, sameValue);
      // Unknown fields alone (typos, mostly) leave every known field well-typed: keep checking
      // the document, so its other problems show in this run too. The errors stop the bundle.
      if (!errors.every((e) => e.keyword === 'additionalProperties')) {
        const id = (value as { id?: unknown }).id;
        if (typeof id === 'string') out.broken[kind as Kind].add(id);
        out.refused.push({ kind: kind as Kind, doc, value: value as Record<string, unknown> });
        continue;
      }
    }
    if (kind === 'api') out.apis.push({ doc, spec: value as ApiDoc['spec'] });
    else if (kind === 'policy') out.policies.push({ doc, spec: value as PolicyDoc['spec'] });
    else if (kind === 'key') out.keys.push({ doc, spec: value as KeyDoc['spec'] });
    else if (kind === 'revocation') out.revocations.push({ doc, spec: value as RevocationDoc['spec'] });
    else out.tests.push({ doc, spec: value as TestDoc['spec'] });
  }
  return out;
}
