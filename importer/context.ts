// State shared by the converters of one import: the report, the id maps (Tyk id -> mtlsgate id)
// and what policies and keys need to know about the imported APIs.
import type { ApiSpec, KeySpec, PolicySpec } from '../compiler/model.ts';
import { CertCopies, type CertReadRoots } from './cert-files.ts';
import type { CertMaterial } from './cert-material.ts';
import { IdMap } from './ids.ts';
import { ImportReport } from './report.ts';
import type { JsonObject } from './values.ts';
import type { ConvertedWhiteList, LimitedRight } from './white-lists.ts';

export interface Imported<S> {
  spec: S;
  /** Input file and JSON pointer of the Tyk object it came from (for the YAML header). */
  file: string;
  pointer: string;
  /** One line for the YAML header, e.g. `Tyk classic API "Payments" (api_id 3f2a...)`. */
  origin: string;
  /** Written commented out (a key whose token cannot be carried over): see keys.ts. */
  disabledBecause?: string;
}

/** How the Tyk gateway matched allowed_urls (tyk.conf http_server_options). */
export interface PathMatching {
  prefix: boolean;
  suffix: boolean;
}

export class ImportContext {
  readonly report = new ImportReport();
  constructor(
    /** Where a certificate path named by a definition may be read (importer/cert-files.ts). */
    readonly certReadRoots: CertReadRoots,
    /** Certificates held as PEM (--certs DIR, copied files): what the mTLS access tests present (importer/mtls-tests.ts). */
    readonly certMaterial: CertMaterial,
  ) {}
  /** Certificate files named by absolute path, copied into OUT/certs/ (importer/cert-files.ts). */
  readonly certCopies = new CertCopies();
  readonly apiIds = new IdMap('API');
  readonly policyIds = new IdMap('policy');
  readonly keyIds = new IdMap('key');
  /** Tyk API id -> the imported API (policies and keys read its listen path). */
  readonly apis = new Map<string, Imported<ApiSpec>>();
  /** Tyk API id -> where its id is (file and JSON pointer): a second definition of it is skipped (importer/duplicates.ts). */
  readonly apiIdSites = new Map<string, { file: string; pointer: string; definition: JsonObject; format: 'classic' | 'oas' }>();
  readonly policies: Imported<PolicySpec>[] = [];
  readonly keys: Imported<KeySpec>[] = [];
  pathMatching: PathMatching = { prefix: false, suffix: false };
  /**
   * tyk.conf hash_keys: whether key ids in the inputs are hashes (true) or the tokens
   * themselves (false). undefined = no tyk.conf given: ids are taken as hashes (Tyk's default).
   */
  hashKeys: boolean | undefined;
  /** --convert-white-lists (importer/white-lists.ts). */
  convertWhiteLists = false;
  /** mtlsgate API id -> its converted white list. */
  readonly whiteLists = new Map<string, ConvertedWhiteList>();
  /** The rights a white list was applied to (the generated access tests prove them). */
  readonly limitedRights: LimitedRight[] = [];
}
