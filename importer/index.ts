// `mtlsgate import tyk`: Tyk API definitions (classic and OAS), policies and key sessions ->
// mtlsgate YAML. Pure: reads the inputs, returns the files to write and the report; the CLI
// writes them (only when nothing was fatal) and runs check on the result.
import { convertClassic } from './classic.ts';
import { CertReadRoots } from './cert-files.ts';
import { CertMaterial } from './cert-material.ts';
import { ImportContext } from './context.ts';
import { convertKey } from './keys.ts';
import { convertOas } from './oas.ts';
import { convertPolicy, type PolicyIndex } from './policies.ts';
import { ptr, type Finding } from './report.ts';
import { inputDirs, readInputs } from './sources.ts';
import { pairOasCompanions } from './companions.ts';
import { bool, obj } from './values.ts';
import { renderAll, type OutFile } from './yaml-out.ts';
import { whiteListTests } from './white-list-tests.ts';
import { mtlsTests } from './mtls-tests.ts';

export { FatalImportError, formatFindings, type Finding } from './report.ts';
export type { OutFile } from './yaml-out.ts';

export interface ImportResult {
  files: OutFile[];
  drops: Finding[];
  /** Definitions left out whole (a second definition of an API id): the import is incomplete. */
  skipped: Finding[];
  notes: Finding[];
  /** certificates: files copied into certs/ (importer/cert-files.ts). */
  counts: { apis: number; policies: number; keys: number; inactiveKeys: number; certificates: number; tests: number };
}

export interface ImportOptions {
  /** Files or directories outside the inputs' directories whose certificate files may be read (--allow-outside). */
  allowOutside?: readonly string[];
  /** --convert-white-lists: a version's white_list becomes allowed_urls on the rights granting its API (importer/white-lists.ts). */
  convertWhiteLists?: boolean;
  /** --certs DIR: the PEM files of the certificates Tyk names by id, for the mTLS access tests (importer/mtls-tests.ts). */
  certs?: string;
}

/** Throws FatalImportError (nothing to write) for inputs that cannot be imported. */
export function importTyk(paths: string[], options: ImportOptions = {}): ImportResult {
  const ctx = new ImportContext(new CertReadRoots(inputDirs(paths), options.allowOutside ?? []), new CertMaterial(options.certs));
  ctx.convertWhiteLists = options.convertWhiteLists === true;
  const items = pairOasCompanions(readInputs(paths), ctx.report);
  for (const item of items) {
    if (item.kind !== 'tykconf') continue;
    const conf = item.value;
    if ('hash_keys' in conf) ctx.hashKeys = bool(conf.hash_keys);
    const http = obj(conf.http_server_options);
    ctx.pathMatching = { prefix: bool(http.enable_path_prefix_matching), suffix: bool(http.enable_path_suffix_matching) };
    if (typeof conf.hash_key_function === 'string' && conf.hash_key_function !== 'sha256' && ctx.hashKeys !== false)
      ctx.report.note(
        item.file,
        ptr(item.pointer, 'hash_key_function'),
        `keys created with ${conf.hash_key_function} hashes cannot keep their tokens (only sha256 hashes can)`,
      );
  }
  // APIs first: policies and keys need their ids and listen paths.
  // In input order, classic and OAS alike: of two definitions of one API id the first is kept (importer/duplicates.ts).
  for (const item of items)
    if (item.kind === 'classic') convertClassic(ctx, item.value, item.file, item.pointer);
    else if (item.kind === 'oas') convertOas(ctx, item.value, item.file, item.pointer);
  const policies: PolicyIndex = { ids: new Map(), inactive: new Set(), facts: new Map() };
  for (const item of items) if (item.kind === 'policy') convertPolicy(ctx, policies, item.value, item.file, item.pointer, item.mapKey);
  for (const item of items) if (item.kind === 'key') convertKey(ctx, policies, item.value, item.file, item.pointer, item.keyRef);
  const apis = [...ctx.apis.values()];
  // Tests first: the mTLS tests copy the certificates they present into certs/.
  const tests = [...whiteListTests(ctx), ...mtlsTests(ctx)];
  const certificates = ctx.certCopies.files();
  return {
    files: [...renderAll(apis, ctx.policies, ctx.keys), ...tests, ...certificates],
    drops: ctx.report.drops,
    skipped: ctx.report.skipped,
    notes: ctx.report.notes,
    counts: {
      apis: apis.length,
      policies: ctx.policies.length,
      keys: ctx.keys.length,
      inactiveKeys: ctx.keys.filter((k) => k.disabledBecause).length,
      certificates: certificates.length,
      tests: tests.length,
    },
  };
}
