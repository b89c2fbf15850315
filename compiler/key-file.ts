// One key file through parse, schema and the keys stage on its own (what each worker thread of
// compiler/parallel-keys.ts runs), returned in a compact form that crosses a thread boundary
// cheaply: columns and concatenated hex instead of a million small objects. Its parsed
// documents are garbage once the file is done, so at 1,000,000 keys they never pile up (~1 GB).
//
// A file is resolved alone only when nothing in it reaches other files: every document is a key
// (or a diagnostic on its own, such as an unknown kind) and no key has a certificate_match
// (resolving its issuer registers a CA for the whole bundle). Anything else answers `restart`,
// and the compile runs on one thread from the start, exactly as before.
import type { BundleApi, BundleKey } from '../bundle/types.ts';
import { CertLoader } from './certs.ts';
import { resolveKeys, sessionCache } from './check-keys.ts';
import { Confinement } from './confine.ts';
import { type Diagnostic, DiagnosticLog } from './diagnostics.ts';
import { type KeyFileCacheContext, type KeyFileCacheFacts, KeyFileCache } from './key-file-cache.ts';
import { checkLimitsOfBroken } from './limits.ts';
import type { PolicySpec } from './model.ts';
import { parseSources } from './parse.ts';
import { validateDocs } from './schema.ts';
import type { SourceFile } from './source.ts';

/** What every key file is resolved against: the rest of the config, already resolved on the main thread. */
export interface KeyFileContext {
  apis: Map<string, BundleApi>;
  /** Policy id -> spec (after checkPolicies: the unique ids). */
  policies: Map<string, PolicySpec>;
  broken: { api: Set<string>; policy: Set<string> };
  strict: boolean;
  expiryWarningDays: number;
  nowMs: number;
  /** Confinement's arguments: the config directory (or base directory) and --allow-outside. */
  root: string;
  allowOutside: readonly string[];
  /** `compile --cache`: each file is taken from its entry or its entry written (compiler/key-file-cache.ts). */
  cache?: KeyFileCacheContext;
}

/** The keys of one file as columns (key-cache.ts PackedKeys without an array per key). */
export interface KeyColumns {
  /** Each distinct session as JSON: [access_rights, policies, quota, rate, on_limiter_error is 'deny']. */
  sessions: string[];
  /** Key ids joined by "\n" (ids are [a-z0-9._-]). */
  ids: string;
  session: Int32Array;
  /** Number of certificates per key, and all of them as concatenated 64-hex, in key order. */
  certCount: Int32Array;
  certs: string;
  /** Sparse: rows with an expiry and their values; inactive rows; rows with a token and the hashes concatenated. */
  expiresRows: Int32Array;
  expires: string[];
  inactiveRows: Int32Array;
  tokenRows: Int32Array;
  tokens: string;
  /** Per certificate (as `certs`): its notAfter in ms when it was given as a PEM, else NaN. */
  certNotAfter: Float64Array;
}

export type KeyFileResult =
  | { restart: string }
  | {
      restart?: undefined;
      /** Documents in the file (E_EMPTY_CONFIG counts them). */
      docs: number;
      /** How many diagnostics the parse logged (E_EMPTY_CONFIG needs none anywhere). */
      parseDiagnostics: number;
      /** Whether parse or schema logged an error (W_NO_APIS is only reported without one). */
      earlyError: boolean;
      /** Every diagnostic, as logged (already line:col: the text is the file's). */
      diagnostics: Diagnostic[];
      keys: KeyColumns;
      /** With a cache: whether the file came from its entry, and its part of the snapshot. */
      cached?: KeyFileCacheFacts;
    };

/** Resolves key files one at a time against one context, keeping what files share (sessions, confinement). */
export class KeyFileResolver {
  private readonly confine: Confinement;
  private readonly policies: Map<string, { spec: PolicySpec }>;
  private readonly sessions = sessionCache();
  private readonly json: SessionJson = new Map();

  private readonly cache: KeyFileCache | undefined;

  constructor(private readonly ctx: KeyFileContext) {
    this.cache = ctx.cache ? new KeyFileCache(ctx.cache) : undefined;
    this.confine = new Confinement(ctx.root, ctx.allowOutside);
    this.policies = new Map([...ctx.policies].map(([id, spec]) => [id, { spec }]));
  }

  /** The parse, schema and keys stages of one key file. */
  resolve(file: SourceFile): KeyFileResult {
    const ctx = this.ctx;
    const was = this.cache?.lookup(file, ctx.nowMs);
    if (was && 'facts' in was) {
      // Not parsed: an entry exists only for a file of plain key documents with no parse or schema diagnostic.
      const keys = toColumns(was.keys, new Map(was.notAfter), this.json);
      return { docs: was.facts.keyDocs, parseDiagnostics: 0, earlyError: false, diagnostics: was.diagnostics, keys, cached: was.facts };
    }
    const log = new DiagnosticLog(ctx.strict);
    const docs = parseSources([file], log);
    const parseDiagnostics = log.diagnostics.length;
    const typed = validateDocs(docs, log);
    const other = typed.apis.length + typed.policies.length + typed.revocations.length + typed.tests.length;
    if (other > 0 || typed.refused.some((r) => r.kind !== 'key')) return { restart: `${file.path} holds documents other than keys` };
    if (typed.keys.some((k) => k.spec.certificate_match !== undefined)) return { restart: `${file.path} has a certificate_match` };
    const earlyError = log.diagnostics.some((d) => d.severity === 'error');
    // What the cache may keep: only valid key documents and no parse or schema diagnostic (cached-keys.ts).
    const plain = log.diagnostics.length === 0 && typed.keys.length === docs.length;
    checkLimitsOfBroken(typed.refused, log);
    // A loader per file: certificate files are named from one key file, and a loader for the
    // whole run would keep every one of them (a Map of 1,000,000 entries).
    const now = new Date(ctx.nowMs);
    const certs = new CertLoader(log, now, ctx.expiryWarningDays, this.confine);
    if (this.cache) KeyFileCache.prepare(certs);
    const resolved = resolveKeys(typed.keys, this.policies, ctx.apis, ctx.broken, certs, new Map(), now, log, false, this.sessions);
    const keys = toColumns(resolved.keys.values(), resolved.notAfter, this.json);
    const result = { docs: docs.length, parseDiagnostics, earlyError, diagnostics: log.diagnostics, keys };
    if (!this.cache || typed.keys.length === 0) return result;
    const facts = this.cache.record(
      file,
      was?.entry === 'stale' ? 'stale' : 'none',
      { keys: [...resolved.keys.values()], notAfter: [...resolved.notAfter], diagnostics: log.diagnostics, keyDocs: typed.keys.length, plain },
      certs,
      ctx.nowMs,
      ctx.expiryWarningDays,
    );
    return { ...result, cached: facts };
  }
}

/** A worker's sessions as JSON, memoised by object identity (see `toColumns`). */
export type SessionJson = Map<object, { policies: unknown; quota: unknown; rate: unknown; deny: boolean; json: string }[]>;

/**
 * The columns of a file's keys. Sessions travel as JSON ([access_rights, policies, quota, rate,
 * deny]), computed once per session object: keys applying the same policies share their
 * session's objects (check-keys.ts `sessionOf`, whose cache a worker keeps across its files),
 * and JSON per key would cost seconds at 1,000,000 keys.
 */
export function toColumns(keys: Iterable<BundleKey>, notAfter: ReadonlyMap<string, number>, memo: SessionJson = new Map()): KeyColumns {
  const sessions: string[] = [];
  const sessionRow = new Map<string, number>();
  const ids: string[] = [];
  const session: number[] = [];
  const certCount: number[] = [];
  const certs: string[] = [];
  const certNotAfter: number[] = [];
  const expiresRows: number[] = [];
  const expires: string[] = [];
  const inactiveRows: number[] = [];
  const tokenRows: number[] = [];
  const tokens: string[] = [];
  for (const k of keys) {
    const i = ids.length;
    const deny = k.on_limiter_error === 'deny';
    let known = memo.get(k.access_rights);
    if (known === undefined) memo.set(k.access_rights, (known = []));
    let one = known.find((c) => c.policies === k.policies && c.quota === k.quota && c.rate === k.rate && c.deny === deny);
    if (one === undefined)
      known.push(
        (one = { policies: k.policies, quota: k.quota, rate: k.rate, deny, json: JSON.stringify([k.access_rights, k.policies, k.quota, k.rate, deny]) }),
      );
    let s = sessionRow.get(one.json);
    if (s === undefined) {
      sessionRow.set(one.json, (s = sessions.length));
      sessions.push(one.json);
    }
    ids.push(k.id);
    session.push(s);
    certCount.push(k.certificates.length);
    for (const fp of k.certificates) {
      certs.push(fp);
      certNotAfter.push(notAfter.get(fp) ?? Number.NaN);
    }
    if (k.expires !== null) {
      expiresRows.push(i);
      expires.push(k.expires);
    }
    if (k.is_inactive) inactiveRows.push(i);
    if (k.token_sha256 !== null) {
      tokenRows.push(i);
      tokens.push(k.token_sha256);
    }
  }
  return {
    sessions,
    ids: ids.join('\n'),
    session: Int32Array.from(session),
    certCount: Int32Array.from(certCount),
    certs: certs.join(''),
    expiresRows: Int32Array.from(expiresRows),
    expires,
    inactiveRows: Int32Array.from(inactiveRows),
    tokenRows: Int32Array.from(tokenRows),
    tokens: tokens.join(''),
    certNotAfter: Float64Array.from(certNotAfter),
  };
}
