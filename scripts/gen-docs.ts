// Generates the two reference pages that must never drift from their sources:
//   docs/config.md from the `description`s in schema/*.schema.json (the files the compiler
//   validates with and editors complete from), and
//   docs/cli.md from the built CLI's own help (`node dist/mtlsgate.mjs COMMAND --help`).
// `npm run docs` writes them; test/docs-generated.test.ts fails when either is out of step.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..');
const execFileAsync = promisify(execFile);
export const KINDS = ['api', 'policy', 'key', 'test'] as const;

type Schema = {
  $ref?: string;
  description?: string;
  title?: string;
  type?: string | string[];
  const?: unknown;
  enum?: unknown[];
  default?: unknown;
  pattern?: string;
  format?: string;
  minimum?: number;
  exclusiveMinimum?: number;
  minLength?: number;
  required?: string[];
  properties?: Record<string, Schema>;
  additionalProperties?: Schema | boolean;
  items?: Schema;
  oneOf?: Schema[];
  anyOf?: Schema[];
  dependentRequired?: Record<string, string[]>;
  $defs?: Record<string, Schema>;
};

function loadSchema(kind: string): Schema {
  return JSON.parse(readFileSync(join(ROOT, 'schema', `${kind}.schema.json`), 'utf8')) as Schema;
}

/** Follows "#/$defs/x" and "other.schema.json#/$defs/x"; keeps the referring node's own description. */
function resolve(node: Schema, home: Schema): { node: Schema; home: Schema } {
  let current = node;
  let currentHome = home;
  while (current.$ref) {
    const [file, pointer] = current.$ref.split('#');
    const target = file ? (JSON.parse(readFileSync(join(ROOT, 'schema', file), 'utf8')) as Schema) : currentHome;
    let found: unknown = target;
    for (const part of pointer.split('/').filter(Boolean)) found = (found as Record<string, unknown>)[part];
    if (found === undefined) throw new Error(`unresolved $ref ${current.$ref}`);
    const description = current.description;
    current = { ...(found as Schema), ...(description ? { description } : {}) };
    currentHome = target;
  }
  return { node: current, home: currentHome };
}

function typeOf(s: Schema): string {
  if (s.const !== undefined) return `\`${JSON.stringify(s.const)}\``;
  if (s.enum) return s.enum.map((v) => `\`${JSON.stringify(v)}\``).join(' \\| ');
  const variants = s.oneOf ?? s.anyOf;
  if (variants) return variants.map((v) => typeOf(v)).join(' or ');
  const t = Array.isArray(s.type) ? s.type.join(' \\| ') : (s.type ?? 'any');
  if (t === 'array' && s.items) return `list of ${typeOf(s.items)}`;
  return t;
}

function constraints(s: Schema): string {
  const out: string[] = [];
  if (s.pattern) out.push(`pattern ${code(s.pattern)}`);
  if (s.format) out.push(`format ${s.format}`);
  if (s.minimum !== undefined) out.push(`>= ${s.minimum}`);
  if (s.exclusiveMinimum !== undefined) out.push(`> ${s.exclusiveMinimum}`);
  if (s.minLength !== undefined && s.minLength > 0) out.push('non-empty');
  return out.join(', ');
}

interface Row {
  path: string;
  type: string;
  required: boolean;
  default: string;
  description: string;
}

/** Every field under `node`, depth first, in schema order. Throws on a field without a description. */
function rows(node: Schema, home: Schema, prefix: string, required: Set<string>, out: Row[], missing: string[]): void {
  for (const [name, raw] of Object.entries(node.properties ?? {})) {
    const { node: field, home: fieldHome } = resolve(raw, home);
    const path = prefix + name;
    if (!field.description) missing.push(path);
    const extra = constraints(field);
    out.push({
      path,
      type: typeOf(field) + (extra ? ` (${extra})` : ''),
      required: required.has(name),
      default: field.default === undefined ? '' : `\`${JSON.stringify(field.default)}\``,
      description: field.description ?? '',
    });
    descend(field, fieldHome, path, out, missing);
  }
}

function descend(field: Schema, home: Schema, path: string, out: Row[], missing: string[]): void {
  if (field.properties) rows(field, home, `${path}.`, new Set(field.required ?? []), out, missing);
  if (field.items) {
    const { node: item, home: itemHome } = resolve(field.items, home);
    if (item.properties) rows(item, itemHome, `${path}[].`, new Set(item.required ?? []), out, missing);
  }
  if (typeof field.additionalProperties === 'object') {
    const { node: value, home: valueHome } = resolve(field.additionalProperties, home);
    if (value.properties)
      rows(value, valueHome, `${path}.<${path.endsWith('access_rights') ? 'api id' : 'name'}>.`, new Set(value.required ?? []), out, missing);
  }
}

const cell = (text: string) => text.replaceAll('|', '\\|').replaceAll('\n', ' ');
/** Inline code that may itself hold a backtick (then fenced with two, CommonMark 6.1). */
const code = (text: string) => (text.includes('`') ? `\`\` ${text} \`\`` : `\`${text}\``);
/** Prose from a schema description: "<64 hex>" would read as an HTML tag outside code. */
const prose = (text: string) => cell(text).replaceAll('<', '&lt;').replaceAll('>', '&gt;');

/** docs/config.md, and the fields that have no description (must be none). */
export function renderConfigDocs(): { markdown: string; undescribed: string[] } {
  const missing: string[] = [];
  const parts = [
    '# Config reference',
    '',
    '<!-- Generated by `npm run docs` from the descriptions in schema/*.schema.json. Edit those, not this file: test/docs-generated.test.ts fails when the two differ. -->',
    '',
    'A config is a directory of `*.yaml` / `*.yml` files, read recursively. Each YAML document',
    'has a `kind` (`api`, `policy`, `key`, or `test`: access tests, never in the bundle); several documents may share a file, separated by',
    '`---`. `mtlsgate check DIR` validates it (every problem at once, with file:line:col; codes in',
    '[diagnostics.md](diagnostics.md)); `mtlsgate compile DIR -o bundle.json` writes the bundle',
    '`mtlsgate serve` runs. Certificate paths are relative to the YAML file naming them.',
    '',
    'Editors complete and check fields when a file starts with',
    '`# yaml-language-server: $schema=<path to>/schema/<kind>.schema.json`.',
    '',
  ];
  for (const kind of KINDS) {
    const schema = loadSchema(kind);
    const list: Row[] = [];
    rows(schema, schema, '', new Set(schema.required ?? []), list, missing);
    parts.push(`## \`kind: ${kind}\``, '', prose(schema.description ?? ''), '', `Schema: [schema/${kind}.schema.json](../schema/${kind}.schema.json).`, '');
    parts.push('| field | type | required | default | description |', '| --- | --- | --- | --- | --- |');
    for (const r of list) parts.push(`| \`${r.path}\` | ${cell(r.type)} | ${r.required ? 'yes' : ''} | ${cell(r.default)} | ${prose(r.description)} |`);
    const together = Object.entries(schema.dependentRequired ?? {}).map(([a, bs]) => `\`${a}\` needs ${bs.map((b) => `\`${b}\``).join(', ')}`);
    if (together.length > 0) parts.push('', `Fields that go together: ${together.join('; ')}.`);
    parts.push('');
  }
  return { markdown: parts.join('\n'), undescribed: missing };
}

/** docs/cli.md from the built CLI's help texts (run `npm run build` first). */
async function renderCliDocs(cli = join(ROOT, 'dist', 'mtlsgate.mjs')): Promise<string> {
  const help = async (args: string[]) => (await execFileAsync(process.execPath, [cli, ...args], { encoding: 'utf8' })).stdout.trimEnd();
  const overview = await help(['--help']);
  const commands = [...overview.matchAll(/^ {2}([a-z][a-z-]*) {2,}\S/gm)].map((m) => m[1]);
  if (commands.length === 0) throw new Error(`no commands found in \`mtlsgate --help\`:\n${overview}`);
  const parts = [
    '# CLI reference',
    '',
    '<!-- Generated by `npm run docs` from `mtlsgate --help` and `mtlsgate COMMAND --help`. Edit the help texts in cli/, not this file: test/docs-generated.test.ts fails when the two differ. -->',
    '',
    'Run it as `node dist/mtlsgate.mjs` (after `npm run build`; the file runs without',
    'node_modules) or `npx mtlsgate`. Exit status, every command: 0 ok, 1 a config error or a',
    'failed check, 2 bad usage or an I/O error. Config fields: [config.md](config.md); diagnostic',
    "codes: [diagnostics.md](diagnostics.md); the gateway's error answers: [errors.md](errors.md).",
    '',
    '```',
    overview,
    '```',
    '',
  ];
  const usages = await Promise.all(commands.map((name) => help([name, '--help'])));
  commands.forEach((name, i) => parts.push(`## \`mtlsgate ${name}\``, '', '```', usages[i], '```', ''));
  return parts.join('\n');
}

export const GENERATED: Record<string, () => Promise<string>> = {
  'docs/config.md': async () => renderConfigDocs().markdown,
  'docs/cli.md': () => renderCliDocs(),
};

if (process.argv[1] === import.meta.filename) {
  const { undescribed } = renderConfigDocs();
  if (undescribed.length > 0) {
    console.error(`schema fields without a description: ${undescribed.join(', ')}`);
    process.exit(1);
  }
  for (const [file, render] of Object.entries(GENERATED)) {
    writeFileSync(join(ROOT, file), await render());
    console.error(`wrote ${file}`);
  }
}
