// What the live compile (compiler/live-compile.ts) keeps in memory of the last successful
// compile: every config file as read, the resolved APIs and policies, each key file's keys-stage
// results, the merged keys with their owners (key id, certificate, token -> file), the
// diagnostics that are not any key file's, and the emitted content and bytes.
import type { BundleRevocation, WireContent } from '../bundle/types.ts';
import type { FileKeysState } from './cached-keys.ts';
import type { ResolvedApis } from './check-apis.ts';
import type { ResolvedKeys } from './check-keys.ts';
import type { Diagnostic } from './diagnostics.ts';
import type { CompileResult, PortalPlan } from './index.ts';
import { validUntil } from './key-cache.ts';
import type { PolicyDoc } from './model.ts';
import type { SourceFile } from './source.ts';

/** Filled by compileDirCapturing (compiler/index.ts) when the compile succeeds. */
export interface LiveCapture {
  files: SourceFile[];
  apis: ResolvedApis;
  policies: Map<string, PolicyDoc>;
  broken: { api: ReadonlySet<string>; policy: ReadonlySet<string> };
  /** Key files' results, by absolute path. */
  perFile: Map<string, FileKeysState>;
  keys: ResolvedKeys;
  revocation: BundleRevocation;
  /** How many revocation and test documents the config has. */
  revocations: number;
  tests: number;
  /**
   * What the stages other than the keys read: certificate, CRL and test certificate files, the
   * notAfter of every certificate, and other instants a result changes at (CRLs' nextUpdate).
   */
  nonKeyTouched: { files: Set<string>; notAfters: number[]; changesAt?: number[] };
  /** The access test cases (and outcomes, with a runner) of the compile. */
  testResults: CompileResult['tests'];
  docs: number;
  plans: PortalPlan[];
  diagnostics: Diagnostic[];
  wire: WireContent;
  bundle: Buffer;
  now: number;
}

export interface LiveState extends LiveCapture {
  /** Config files by absolute path. */
  byPath: Map<string, SourceFile>;
  /** Diagnostics that belong to no key file's keys stage (they stay while only key files change). */
  base: Diagnostic[];
  /** Which file declares each key id, certificate fingerprint and token hash. */
  idOwner: Map<string, string>;
  fpOwner: Map<string, string>;
  tokenOwner: Map<string, string>;
  /** Certificate file -> the key files that read it. */
  certReaders: Map<string, Set<string>>;
  /** The results hold for validFrom <= now < validUntil. */
  validFrom: number;
  nonKeyValidUntil: number;
  /**
   * False for a config with test documents: their inputs (every key) are not tracked per
   * file, so any change compiles everything; only "nothing changed" answers from the state.
   */
  incremental: boolean;
}

export function buildState(c: LiveCapture, expiryWarningDays: number, incremental: boolean): LiveState {
  const state: LiveState = {
    ...c,
    byPath: new Map(c.files.map((f) => [f.absPath, f])),
    base: [],
    idOwner: new Map(),
    fpOwner: new Map(),
    tokenOwner: new Map(),
    certReaders: new Map(),
    validFrom: c.now,
    nonKeyValidUntil: Math.min(validUntil(c.now, c.nonKeyTouched.notAfters, [], expiryWarningDays), ...(c.nonKeyTouched.changesAt ?? [])),
    incremental,
  };
  const own = new Set<Diagnostic>();
  for (const [abs, r] of c.perFile) {
    for (const d of r.diagnostics) own.add(d);
    addOwners(state, abs, r);
  }
  state.base = c.diagnostics.filter((d) => !own.has(d));
  return state;
}

export function addOwners(state: LiveState, abs: string, r: FileKeysState): void {
  for (const k of r.keys) {
    state.idOwner.set(k.id, abs);
    for (const fp of k.certificates) state.fpOwner.set(fp, abs);
    if (k.token_sha256 !== null) state.tokenOwner.set(k.token_sha256, abs);
  }
  for (const cert of r.certFiles) {
    let readers = state.certReaders.get(cert);
    if (!readers) state.certReaders.set(cert, (readers = new Set()));
    readers.add(abs);
  }
}

export function dropOwners(state: LiveState, abs: string, r: FileKeysState): void {
  for (const k of r.keys) {
    if (state.idOwner.get(k.id) === abs) state.idOwner.delete(k.id);
    for (const fp of k.certificates) if (state.fpOwner.get(fp) === abs) state.fpOwner.delete(fp);
    if (k.token_sha256 !== null && state.tokenOwner.get(k.token_sha256) === abs) state.tokenOwner.delete(k.token_sha256);
  }
  for (const cert of r.certFiles) state.certReaders.get(cert)?.delete(abs);
}

/** The first instant the state's results may no longer hold. */
export function stateValidUntil(state: LiveState): number {
  let until = state.nonKeyValidUntil;
  for (const r of state.perFile.values()) until = Math.min(until, r.validUntil);
  return until;
}
