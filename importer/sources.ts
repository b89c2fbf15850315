// The inputs: files and directories (every *.json below them, and tyk.conf), each parsed as JSON
// and sorted into what it holds. A file that cannot be read or parsed, or holds none of the
// shapes below, is fatal: importing the rest would silently lose it.
//   classic API definition   {"api_id", "proxy": {...}}, or Dashboard {"api_definition": {...}}
//   Tyk OAS API definition   {"openapi", "x-tyk-api-gateway": {...}}, or Dashboard {"oas": {...}}
//   policy                   {"id"|"_id", "access_rights", ...}; an array of them; a policies.json
//                            map of id -> policy; a Dashboard listing {"Data": [...]}
//   key session              {"access_rights"|"apply_policies"|"certificate", ...} named by its
//                            file (<key id>.json); a Dashboard key {"key_id", "key_hash", "data"}
//   gateway config           tyk.conf: hash_keys, http_server_options.enable_path_*_matching
import { statSync } from 'node:fs';
import { basename, dirname, extname, resolve } from 'node:path';
import { isClassicApi } from './classic.ts';
import { isKeyWrapper, isSession } from './keys.ts';
import { isOasApi } from './oas.ts';
import { isPolicy, isPolicyMap } from './policies.ts';
import { FatalImportError, ptr } from './report.ts';
import { isObject, str, type Json, type JsonObject } from './values.ts';
import { errnoMessage } from '../common/errno.ts';
import { filesUnder } from '../common/files-under.ts';
import { readRegularFile } from '../common/regular-file.ts';

/**
 * The most bytes one Tyk input file may hold: 256 MiB, half of V8's longest string (a file is
 * parsed as one), far above a definition or a policies.json, and enough for a Dashboard key
 * listing of a million sessions. A bound at all keeps /dev/zero or a log from being read until
 * memory runs out.
 */
export const MAX_TYK_FILE_BYTES = 256 * 1024 * 1024;

export type Item =
  | { kind: 'classic' | 'oas' | 'tykconf'; file: string; pointer: string; value: JsonObject }
  | { kind: 'policy'; file: string; pointer: string; value: JsonObject; mapKey?: string }
  | { kind: 'key'; file: string; pointer: string; value: JsonObject; keyRef: { value: string; explicitHash: boolean; pointer: string } };

/** The directories the inputs are (or are in): a definition's certificate paths are read inside these only (cert-files.ts). */
export function inputDirs(paths: readonly string[]): string[] {
  return paths.map((p) => (statSync(p, { throwIfNoEntry: false })?.isDirectory() ? resolve(p) : dirname(resolve(p))));
}

/**
 * As deep as a Tyk input may nest (the YAML config's bound too, compiler/parse.ts): its readers
 * recurse, and `[[[[...]]]]` 10,000 levels deep ended the import with "Maximum call stack size
 * exceeded" instead of naming the file.
 */
const MAX_JSON_DEPTH = 100;

/** Whether `value` nests arrays or objects more than `max` levels (iterative: no stack to overflow). */
function nestedDeeperThan(value: Json, max: number): boolean {
  const stack: [Json, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth >= max) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
  }
  return false;
}

function listInputs(paths: string[]): string[] {
  const out: string[] = [];
  const walked = new Set<string>();
  for (const p of paths) {
    let st;
    try {
      st = statSync(p);
    } catch (err) {
      throw new FatalImportError(p, '', `cannot read: ${errnoMessage(err)}`);
    }
    if (st.isDirectory()) out.push(...filesUnder(p, { skipHidden: true, walked }).filter((f) => extname(f) === '.json' || basename(f) === 'tyk.conf'));
    else out.push(p);
  }
  return out;
}

function isTykConf(o: JsonObject): boolean {
  return 'hash_keys' in o || 'hash_key_function' in o || 'http_server_options' in o || ('listen_port' in o && 'secret' in o);
}

function classify(value: Json, file: string, pointer: string, out: Item[], mapKey?: string): boolean {
  if (Array.isArray(value)) {
    if (value.length === 0) return false;
    return value.every((v, i) => classify(v, file, ptr(pointer, i), out));
  }
  if (!isObject(value)) return false;
  if (isOasApi(value)) out.push({ kind: 'oas', file, pointer, value });
  else if (isClassicApi(value)) out.push({ kind: 'classic', file, pointer, value });
  else if (isObject(value.api_definition)) out.push({ kind: 'classic', file, pointer: ptr(pointer, 'api_definition'), value: value.api_definition });
  else if (isObject(value.oas) && isOasApi(value.oas)) out.push({ kind: 'oas', file, pointer: ptr(pointer, 'oas'), value: value.oas });
  else if (isTykConf(value)) out.push({ kind: 'tykconf', file, pointer, value });
  else if (isKeyWrapper(value)) {
    const hash = str(value.key_hash);
    const ref = hash ?? str(value.key_id) ?? str(value.key) ?? '';
    const field = hash ? 'key_hash' : 'key_id' in value ? 'key_id' : 'key';
    if (ref === '') return false;
    out.push({
      kind: 'key',
      file,
      pointer: ptr(pointer, 'data'),
      value: value.data as JsonObject,
      keyRef: { value: ref, explicitHash: hash !== undefined, pointer: ptr(pointer, field) },
    });
  } else if (isPolicy(value) || (mapKey !== undefined && isObject(value.access_rights))) out.push({ kind: 'policy', file, pointer, value, mapKey });
  else if (isSession(value) || isObject(value.access_rights)) {
    if (pointer !== '') return false; // a bare session is named by its file: one per file
    out.push({ kind: 'key', file, pointer, value, keyRef: { value: basename(file, extname(file)), explicitHash: false, pointer: '' } });
  } else if (Array.isArray(value.Data)) return classify(value.Data, file, ptr(pointer, 'Data'), out);
  // The Dashboard's API listing (GET /api/apis): {"apis": [{"api_definition": {...}}, ...], "pages": N}.
  else if (Array.isArray(value.apis)) return classify(value.apis, file, ptr(pointer, 'apis'), out);
  else {
    // policies.json: policy id -> policy
    if (!isPolicyMap(value)) return false;
    for (const [k, v] of Object.entries(value)) out.push({ kind: 'policy', file, pointer: ptr(pointer, k), value: v as JsonObject, mapKey: k });
  }
  return true;
}

export function readInputs(paths: string[]): Item[] {
  const items: Item[] = [];
  for (const file of listInputs(paths)) {
    let text: string;
    try {
      text = readRegularFile(file, MAX_TYK_FILE_BYTES).toString('utf8');
    } catch (err) {
      throw new FatalImportError(file, '', `cannot read: ${errnoMessage(err)}`);
    }
    let value: Json;
    try {
      value = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
    } catch (err) {
      throw new FatalImportError(file, '', `not valid JSON: ${(err as Error).message}`);
    }
    if (nestedDeeperThan(value, MAX_JSON_DEPTH))
      throw new FatalImportError(file, '', `arrays and objects nested more than ${MAX_JSON_DEPTH} levels deep: no Tyk definition, policy or session is`);
    const found: Item[] = [];
    if (!classify(value, file, '', found)) throw new FatalImportError(file, '', 'not a Tyk API definition (classic or OAS), policy, key session or tyk.conf');
    items.push(...found);
  }
  return items;
}
