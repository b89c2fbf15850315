// `serve --state-dir DIR`: what the gateway remembers across a restart, so that a restart does
// not reopen what it refuses while it runs (docs/security.md sections 27 and 30): the signing
// time of the newest bundle it took (runtime/bundle-floor.ts), and per crl_url the CA and the
// newest CRL it took from there (runtime/crl-fetcher.ts). Without it a restarted gateway takes
// the first bundle and the first CRL that verify, however old.
//
// DIR/state.json holds no secret: times, digests, a key id, CA fingerprints, CRL numbers, and
// crl_urls as they may be shown (runtime/redact.ts: no query string, no userinfo). It is written
// by common/atomic-write.ts (a new file under a random name, synced, renamed over the old one), so
// a crash leaves the old file or the new one, never half of one, and nothing planted in DIR is
// written through. DIR itself must be the user's and writable by nobody else (as ssh asks of
// ~/.ssh), and every directory above it writable only by root or the user (OpenSSH's StrictModes):
// whoever can write it or a parent can remove or replace state.json, and with it the floors.
// One process writes it: `serve`, or the primary of `serve --workers N` (the workers send it
// what they took: runtime/cluster/worker.ts).
import { createHash } from 'node:crypto';
import { mkdirSync, realpathSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { writeFileAtomicAsync } from '../common/atomic-write.ts';
import { errnoMessage } from '../common/errno.ts';
import { readRegularFile } from '../common/regular-file.ts';
import { MAX_STATE_FILE_BYTES } from '../common/size-limits.ts';
import { type BundleFloor, higherFloor } from './bundle-floor.ts';
import { oneAtATime } from './one-at-a-time.ts';
import { redactUrl } from './redact.ts';
import type { CrlFloor } from './revocation.ts';

const STATE_FILE = 'state.json';
const STATE_FORMAT = 'mtlsgate.state/v1';

/** The newest signed bundle taken. */
export interface BundleRecord {
  /** ms since the epoch. */
  signedAt: number;
  digest: string;
  keyId: string;
  /** The signature field that covers digest and signedAt (bundle/sign.ts): a cluster's primary verifies it before it believes the time. Not kept in the state file. */
  signature?: string;
}

export interface GatewayState {
  bundle: BundleRecord | null;
  /**
   * crlFloorKey(crl_url as crlStateKey keeps it, CA fingerprint) → the newest CRL of that CA taken
   * from that URL. One floor per CA of a URL, not one per URL: a floor of another CA (a cluster
   * worker's own, section 46) would otherwise take the place of the real CA's.
   */
  crls: Map<string, CrlFloor>;
}

/** CAs whose floors one crl_url keeps; a further CA's is not recorded (one never takes another's place). */
const MAX_CAS_PER_CRL_URL = 8;

/** What a process that takes bundles and CRLs reports them to: the state file's writer, or (a worker) the primary. */
export interface StateRecorder {
  bundleTaken(record: BundleRecord): void;
  /**
   * `url` as configured (the state file keeps it as it may be shown: runtime/redact.ts); `bytes`:
   * the CRL itself, for the other workers of a cluster (the state file keeps only the floor);
   * `issuer`: the certificate (DER) of the CA that signed it, so a cluster's primary can verify it.
   */
  crlTaken(url: string, floor: CrlFloor, bytes?: Buffer, issuer?: Buffer): void;
}

class StateFileError extends Error {
  override name = 'StateFileError';
}

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const time = (v: unknown): number | null => (typeof v === 'string' && ISO.test(v) && !Number.isNaN(Date.parse(v)) ? Date.parse(v) : null);
const iso = (ms: number) => new Date(ms).toISOString();

/** The file's contents, checked field by field; throws Error naming the first bad one. */
function parseState(text: string): GatewayState {
  const doc = JSON.parse(text) as Record<string, unknown>;
  if (typeof doc !== 'object' || doc === null || doc.format !== STATE_FORMAT) throw new Error(`"format" is not ${JSON.stringify(STATE_FORMAT)}`);
  let bundle: BundleRecord | null = null;
  if (doc.bundle !== null) {
    const b = doc.bundle as Record<string, unknown>;
    const signedAt = time(b?.signed_at);
    if (signedAt === null || typeof b.digest !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(b.digest) || typeof b.key_id !== 'string')
      throw new Error('"bundle" needs signed_at (ISO-8601 UTC), digest (sha256:<hex>) and key_id');
    bundle = { signedAt, digest: b.digest, keyId: b.key_id };
  }
  const crls = new Map<string, CrlFloor>();
  if (typeof doc.crls !== 'object' || doc.crls === null) throw new Error('"crls" is not an object');
  for (const [url, entry] of Object.entries(doc.crls as Record<string, unknown>)) {
    // One CA's floor as an object (every file before session 15), several as an array.
    const floors = (Array.isArray(entry) ? entry : [entry]) as Array<Record<string, unknown> | null>;
    if (floors.length === 0 || floors.length > MAX_CAS_PER_CRL_URL) throw new Error(`"crls" entry ${JSON.stringify(url)} holds ${floors.length} floors`);
    for (const v of floors) {
      const thisUpdate = time(v?.this_update);
      const ca = typeof v?.ca === 'string' && /^sha256:[0-9a-f]{64}$/.test(v.ca) ? v.ca.slice(7) : null;
      const number = v?.crl_number;
      if (thisUpdate === null || ca === null || !(number === null || (typeof number === 'string' && /^[0-9a-f]+$/.test(number))))
        throw new Error(`"crls" entry ${JSON.stringify(url)} needs ca (sha256:<hex>), this_update (ISO-8601 UTC) and crl_number (hex or null)`);
      crls.set(crlFloorKey(url, ca), { ca, thisUpdate, number: number as string | null });
    }
  }
  return { bundle, crls };
}

function serialise(state: GatewayState): string {
  const byUrl = new Map<string, CrlFloor[]>();
  for (const [key, c] of [...state.crls].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const url = key.slice(0, key.lastIndexOf('\n'));
    byUrl.set(url, [...(byUrl.get(url) ?? []), c]);
  }
  const crls: Record<string, unknown> = {};
  for (const [url, floors] of byUrl) {
    const written = floors.map((c) => ({ ca: `sha256:${c.ca}`, this_update: iso(c.thisUpdate), crl_number: c.number }));
    // One CA: the object every earlier version reads.
    crls[url] = written.length === 1 ? written[0] : written;
  }
  const bundle = state.bundle && { signed_at: iso(state.bundle.signedAt), digest: state.bundle.digest, key_id: state.bundle.keyId };
  return `${JSON.stringify({ format: STATE_FORMAT, bundle, crls }, null, 2)}\n`;
}

/**
 * DIR/state.json, or an empty state when there is none yet (DIR is made if missing). Throws
 * StateFileError when DIR or the file cannot be read or the file is not a state file: start-up
 * stops rather than forget the floors the file held.
 */
function readState(dir: string): GatewayState {
  const path = join(dir, STATE_FILE);
  const consequence =
    'it holds what keeps an older bundle or CRL from being taken after a restart; restore it, or move it away to start without those floors (the first bundle and CRLs that verify are then taken)';
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new StateFileError(`--state-dir ${dir}: cannot make the directory: ${errnoMessage(err)}`);
  }
  const unsafe = unsafeDirectory(dir);
  if (unsafe !== null) throw new StateFileError(`--state-dir ${dir}: ${unsafe}`);
  let text: string;
  try {
    // A regular file, bounded: a named pipe planted as state.json must not hold start-up.
    text = readRegularFile(path, MAX_STATE_FILE_BYTES).toString('utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { bundle: null, crls: new Map() };
    throw new StateFileError(`--state-dir: cannot read ${path}: ${errnoMessage(err)}; ${consequence}`);
  }
  try {
    return parseState(text);
  } catch (err) {
    throw new StateFileError(`--state-dir: ${path} is not a state file mtlsgate wrote (${(err as Error).message}); ${consequence}`);
  }
}

/**
 * Why DIR may not hold the state, or null: it must be a directory owned by this user and
 * writable by no group and no other user (ssh's rule for ~/.ssh), and so must every directory
 * above it, except that root may own them (OpenSSH's StrictModes): whoever can write a parent can
 * rename DIR away and put another in its place. A sticky parent (/tmp, mode 1777) is accepted: it
 * lets nobody rename what another user owns. Where there are no user ids (Windows) only the kind
 * is checked.
 */
function unsafeDirectory(dir: string): string | null {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(dir);
  } catch (err) {
    return `cannot read the directory: ${errnoMessage(err)}`;
  }
  if (!st.isDirectory()) return 'is not a directory';
  const uid = process.getuid?.();
  if (uid === undefined) return null;
  const fix = `; chmod 700 ${dir} and chown it to the user serve runs as, or name a directory of its own (serve makes a missing one mode 700)`;
  if (st.uid !== uid)
    return `is owned by uid ${st.uid}, not by this user (uid ${uid}): its owner can replace the state file and with it the floors it keeps${fix}`;
  const writers = writersOf(st.mode);
  if (writers !== null)
    return `is writable by ${writers} (mode ${modeOf(st.mode)}): whoever can write it can remove or replace the state file and with it the floors it keeps${fix}`;
  return unsafeParent(dir, uid);
}

const modeOf = (mode: number) => `0${(mode & 0o7777).toString(8)}`;
const writersOf = (mode: number) => [mode & 0o020 ? 'its group' : null, mode & 0o002 ? 'other users' : null].filter((w) => w !== null).join(' and ') || null;

/** The first directory above DIR (as named, and as its symlinks resolve) that another user could rename it in, or null. */
function unsafeParent(dir: string, uid: number): string | null {
  const parents = new Set<string>();
  for (const start of [resolve(dir), realpathSync(dir)]) for (let p = dirname(start); !parents.has(p); p = dirname(p)) parents.add(p);
  for (const parent of parents) {
    let st: ReturnType<typeof statSync>;
    try {
      st = statSync(parent);
    } catch (err) {
      return `cannot read its parent ${parent}: ${errnoMessage(err)}`;
    }
    const why =
      st.uid !== 0 && st.uid !== uid
        ? `is owned by uid ${st.uid}, neither root nor this user (uid ${uid})`
        : writersOf(st.mode) !== null && (st.mode & 0o1000) === 0
          ? `is writable by ${writersOf(st.mode)} (mode ${modeOf(st.mode)}) and not sticky`
          : null;
    if (why !== null)
      return `its parent ${parent} ${why}: whoever can write it can rename ${dir} away and put another directory, with another state file, in its place (and with it the floors it keeps); make every directory above it writable only by root or this user (chmod go-w ${parent}; a sticky directory such as /tmp is fine), or name a state directory elsewhere (docs/security.md section 39; Kubernetes: docs/workers.md)`;
  }
  return null;
}

/** The bundle floor a state file sets (runtime/bundle-floor.ts). */
function floorOfState(state: GatewayState, dir: string): BundleFloor | null {
  const b = state.bundle;
  return b === null ? null : { signedAt: b.signedAt, digest: b.digest, from: `the last bundle taken before this start (--state-dir ${dir})` };
}

/** `a` is newer than `b` as a CRL of the same URL: another CA (a rotation the fetcher took), a higher number, or a later thisUpdate. */
/**
 * How a crl_url is kept in the state file: as it may be shown (runtime/redact.ts), and when that
 * hides something (a query string, userinfo), with a short SHA-256 of the URL itself, so that two
 * URLs that differ only in what is hidden (?part=1, ?part=2) keep their own floors without the
 * secret being written.
 */
export function crlStateKey(url: string): string {
  const shown = redactUrl(url);
  return shown === url ? url : `${shown} sha256:${createHash('sha256').update(url).digest('hex').slice(0, 16)}`;
}

/** Where the floor of `ca`'s CRLs at a crl_url (as crlStateKey keeps it) is kept: each CA of a URL has its own. */
export function crlFloorKey(stateKey: string, ca: string): string {
  return `${stateKey}\n${ca}`;
}

/**
 * Puts `floor` (of a CRL taken from the URL kept as `stateKey`) into `floors` when it is newer than
 * the floor of its CA there; true when it did. A CA the URL has no floor of yet is recorded only
 * while the URL keeps fewer than MAX_CAS_PER_CRL_URL: never in another CA's place, so a floor of a
 * CA no bundle binds to the URL (a cluster worker's own) leaves the real CA's where it is.
 */
export function raiseCrlFloor(floors: Map<string, CrlFloor>, stateKey: string, floor: CrlFloor): boolean {
  const key = crlFloorKey(stateKey, floor.ca);
  const held = floors.get(key);
  if (held === undefined) {
    let cas = 0;
    for (const k of floors.keys()) if (k.startsWith(`${stateKey}\n`)) cas++;
    if (cas >= MAX_CAS_PER_CRL_URL) return false;
  } else if (!newerCrl(floor, held)) return false;
  floors.set(key, floor);
  return true;
}

/** Whether `a` is a newer CRL than `b` (another CA's counts as newer: a rotated CA). */
export function newerCrl(a: CrlFloor, b: CrlFloor | undefined): boolean {
  if (b === undefined || a.ca !== b.ca) return true;
  if (a.number !== null && b.number !== null && a.number !== b.number)
    return a.number.length !== b.number.length ? a.number.length > b.number.length : a.number > b.number;
  return a.thisUpdate > b.thisUpdate;
}

/** The one writer of DIR/state.json: records only raise what it holds; writes run one at a time, the last change always written. */
export class StateWriter implements StateRecorder {
  private readonly path: string;
  private readonly writes = oneAtATime(() => this.write());

  constructor(
    readonly dir: string,
    private readonly state: GatewayState,
    private readonly onError: (message: string) => void,
  ) {
    this.path = join(dir, STATE_FILE);
  }

  bundleTaken(record: BundleRecord): void {
    const held = this.state.bundle;
    if (held !== null && (record.signedAt < held.signedAt || (record.signedAt === held.signedAt && record.digest === held.digest))) return;
    this.state.bundle = record;
    void this.writes.run();
  }

  crlTaken(url: string, floor: CrlFloor): void {
    if (raiseCrlFloor(this.state.crls, crlStateKey(url), floor)) void this.writes.run();
  }

  /** Writes now and reports a failure by throwing (start-up: a state directory that cannot be written stops it). */
  async writeNow(): Promise<void> {
    await this.writeFile();
  }

  /** Resolves once every recorded change is on disk (or failed and was reported). */
  flushed(): Promise<void> {
    return this.writes.idle();
  }

  private async write(): Promise<void> {
    try {
      await this.writeFile();
    } catch (err) {
      this.onError((err as Error).message);
    }
  }

  private async writeFile(): Promise<void> {
    try {
      await writeFileAtomicAsync(this.path, serialise(this.state), { mode: 0o600 });
    } catch (err) {
      const e = err as Error;
      throw new StateFileError(`--state-dir: cannot write ${this.path}: ${e.name === 'UnsafeTargetError' ? e.message : errnoMessage(e)}`);
    }
  }
}

/** What start-up takes from `--state-dir` and `--bundle-not-before`. */
export interface StartState {
  /** The bundle floor: the higher of the state file's and --bundle-not-before. */
  floor: BundleFloor | null;
  crlFloors: ReadonlyMap<string, CrlFloor>;
  /** Where bundles and CRLs taken are reported; null without --state-dir. */
  recorder: StateRecorder | null;
  /** This process's writer (a single `serve`, or the primary); null when another process writes. */
  writer: StateWriter | null;
}

/**
 * Reads DIR/state.json (a cluster worker reads it too, and reports to the primary through
 * `recorder`); a process that writes it writes it once now, so a directory it cannot write stops
 * start-up instead of the first reload. Throws StateFileError.
 */
export async function startState(
  stateDir: string | undefined,
  notBefore: number | undefined,
  recorder: StateRecorder | undefined,
  onWriteError: (message: string) => void,
): Promise<StartState> {
  const operator: BundleFloor | null = notBefore === undefined ? null : { signedAt: notBefore, digest: null, from: '--bundle-not-before' };
  // Without a state directory a cluster worker still reports what it takes: the primary tells the other workers.
  if (stateDir === undefined) return { floor: operator, crlFloors: new Map(), recorder: recorder ?? null, writer: null };
  const state = readState(stateDir);
  const floor = higherFloor(floorOfState(state, stateDir), operator);
  const crlFloors = new Map(state.crls);
  if (recorder !== undefined) return { floor, crlFloors, recorder, writer: null };
  const writer = new StateWriter(stateDir, state, onWriteError);
  await writer.writeNow();
  return { floor, crlFloors, recorder: writer, writer };
}
