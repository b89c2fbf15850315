// The portal's one in-memory index of DIR/keys/portal: every portal key file, parsed once,
// filed by owner. It serves the cap on keys per developer (portal/key-limit.ts), the "My keys"
// page and the admin page, which before read and parsed every key file at every view (7.2 s
// at 20,000 files, the portal answering no one meanwhile).
//
// Start: every file is read once, in the background, a slice of at most LOAD_SLICE_MS at a
// time, so the portal answers from its first moment; until the read is done the pages that
// need the index say so ("loading", 503) rather than show a part of it, and the cap waits for
// it. Before (session 11) a signed-in portal read every file before it listened: 4.2 s at
// 20,000 files.
//
// Freshness: the directory stays the truth (a second portal process, `mtlsgate approve`, git,
// an editor change files behind this process's back), but a view no longer stats every file.
// An inotify watch on the directory (compiler/change-journal.ts, as the live compile uses)
// names the files that changed; a view reads those again, and only those. Behind it, one stat
// of the directory per view: when its inode or mtime moved without this process writing, the
// directory is listed again (new files read, removed ones dropped) in case the watch missed it
// (an event queue overflow); when the watch is lost, or could not be set (no directory yet),
// every file is looked at again, as before. Every SWEEP_EVERY_MS every file is stat'ed in the
// background too, for file systems that deliver no inotify events (NFS): there an in-place
// edit shows within that period.
import { readdirSync, statSync } from 'node:fs';
import { basename, dirname, join, sep } from 'node:path';
import { ChangeJournal } from '../compiler/change-journal.ts';
import { keyFilePath, newestFirst, PORTAL_KEYS_DIR, parsePortalKey, type PortalKey, readKeyFileText } from './key-file.ts';

/** The parse the index uses; tests pass a counting (or slow) one to check what a page view parses. */
type ParseKey = (text: string, keyId: string) => PortalKey | null;

/** How long the background read holds the event loop before it lets requests in. */
const LOAD_SLICE_MS = 10;
/** The background stat of every file, for file systems without inotify events. */
export const SWEEP_EVERY_MS = 60_000;
const KEY_FILE = /^(portal-[0-9a-f]{8})\.yaml$/;

interface Entry {
  /** inode, size and mtime of the file when it was parsed. */
  stamp: string;
  /** null: not (yet) a key declaration; read again when the file changes. */
  key: PortalKey | null;
}

/** readChanged: the index holds the file as it is (or it is gone, and dropped). */
const UNCHANGED = Symbol('unchanged');

const yieldToRequests = () => new Promise<void>((resolve) => setImmediate(resolve));

export class PortalKeyIndex {
  private readonly entries = new Map<string, Entry>();
  /** Parsed keys by owner ('' for keys without one), by id. */
  private readonly byOwner = new Map<string, Map<string, PortalKey>>();
  /** Ids of the keys waiting for approval. */
  private readonly pendingIds = new Set<string>();
  /** DIR/keys/portal */
  private readonly dir: string;
  /** DIR/keys/portal/ : a listed id's file is this plus `<id>.yaml` (cheaper than keyFilePath's check per file). */
  private readonly prefix: string;
  private journal = new ChangeJournal();
  /** `inode:mtime` of the directory when it was last listed ('' when absent; null: never listed). */
  private listedStamp: string | null = null;
  private firstLoad: Promise<void> | null = null;
  private sweeping: Promise<void> | null = null;
  private sweepTimer: NodeJS.Timeout | null = null;
  private readonly loadProgress = { read: 0, total: 0, done: false };
  /** Owner scans running (scanFor), and the read's resumption waiting for them to end. */
  private scanning = 0;
  private readonly afterScans: (() => void)[] = [];
  /** What the index has done so far: files stat'ed, files parsed, listings, full sweeps (tests and the bench read it). */
  readonly work = { stats: 0, parses: 0, listings: 0, sweeps: 0, scans: 0 };

  /** Reads nothing yet: `load()` (a signed-in portal's start) or the first query reads every file once. */
  constructor(
    private readonly configDir: string,
    private readonly parse: ParseKey = parsePortalKey,
    private readonly sweepEveryMs = SWEEP_EVERY_MS,
  ) {
    this.dir = join(configDir, PORTAL_KEYS_DIR);
    this.prefix = this.dir + sep;
  }

  /** Starts reading every key file in the background (once); settles when all are in. */
  load(): Promise<void> {
    this.firstLoad ??= this.sweep().then(
      () => {
        this.loadProgress.done = true;
        this.sweepTimer = setInterval(() => void this.sweep().catch(() => {}), this.sweepEveryMs).unref();
      },
      (err: unknown) => {
        this.firstLoad = null; // the next query tries again (and reports its error)
        throw err;
      },
    );
    return this.firstLoad;
  }

  /** The first read in progress, or null: files read so far of how many. */
  get loading(): { read: number; total: number } | null {
    return this.firstLoad === null || this.loadProgress.done ? null : { read: this.loadProgress.read, total: this.loadProgress.total };
  }

  /**
   * Takes in what changed in the directory since the last look: the files the watch named are
   * read again; a stat of the directory catches a listing change the watch missed; a lost watch
   * means looking at every file. Every query below calls it first.
   */
  async fresh(): Promise<void> {
    await this.load();
    // Delivers the events already queued in the kernel: a change made before this view was asked for is among them.
    const { paths, lost } = await this.journal.take();
    let stamp = this.dirStamp();
    if (lost || !this.journal.watches(this.dir) || inodeOf(stamp) !== inodeOf(this.listedStamp)) {
      await this.sweep();
      stamp = this.listedStamp!;
    }
    for (const path of paths) {
      const id = KEY_FILE.exec(basename(path))?.[1];
      // Read again even when the stamp looks the same: an edit within the mtime resolution is seen too.
      if (id !== undefined && dirname(path) === this.dir) this.reread(id, true);
    }
    if (stamp !== this.listedStamp) this.relist(stamp);
  }

  /**
   * How many portal key files name `owner` as theirs, whatever their state. The issuer calls
   * it under the directory lock, so two requests cannot both take the last place.
   */
  async count(owner: string): Promise<number> {
    await this.fresh();
    return this.byOwner.get(owner)?.size ?? 0;
  }

  /** The keys of `owner`, newest request first. */
  async ownedBy(owner: string): Promise<PortalKey[]> {
    // While the first read runs: the files that may be this owner's, found without parsing the others.
    if (this.loading !== null && scannableOwner(owner)) return this.scanFor(owner);
    await this.fresh();
    return [...(this.byOwner.get(owner)?.values() ?? [])].sort(newestFirst);
  }

  /** Whether `ownedBy(owner)` answers before the first read is done (portal/routes-keys.ts "My keys"). */
  answersDuringLoad(owner: string): boolean {
    return scannableOwner(owner);
  }

  /**
   * The keys of `owner` while the first read is still under way, exactly as a finished read
   * would give them: every listed file is stat'ed; one the index holds unchanged is taken from
   * it; any other is read, and parsed only when its text holds the owner's characters or a
   * backslash (scannableOwner says why no other file can be the owner's). At 20,000 files the
   * parse is ~85% of the read (bench/portal-list.ts), so this answers in a fraction of it.
   * Sliced as the read is; the files parsed here are not parsed again by it.
   */
  private async scanFor(owner: string): Promise<PortalKey[]> {
    this.work.scans++;
    this.scanning++;
    try {
      const mayOwn = mayNameOwner(owner);
      const owned: PortalKey[] = [];
      let sliceFrom = performance.now();
      for (const id of this.listIds()) {
        const read = this.readChanged(id, false, `${this.prefix}${id}.yaml`);
        if (read === UNCHANGED) {
          const key = this.entries.get(id)?.key;
          if (key?.owner === owner) owned.push(key);
        } else if (mayOwn.test(read.text) || read.text.includes('\\')) {
          const key = this.take(id, read.stamp, read.text);
          if (key?.owner === owner) owned.push(key);
        }
        if (performance.now() - sliceFrom >= LOAD_SLICE_MS) {
          await yieldToRequests();
          sliceFrom = performance.now();
        }
      }
      return owned.sort(newestFirst);
    } finally {
      if (--this.scanning === 0) for (const resume of this.afterScans.splice(0)) resume();
    }
  }

  /**
   * The keys waiting for approval, newest first: `pageSize` of them from page `asked` (0-based;
   * past the end: the last page), the page given and how many wait in all; and the `recent`
   * newest keys of all.
   */
  async forAdmin(asked: number, pageSize: number, recent: number): Promise<{ pending: PortalKey[]; page: number; pendingTotal: number; recent: PortalKey[] }> {
    await this.fresh();
    const waiting = [...this.pendingIds].map((id) => this.entries.get(id)!.key!).sort(newestFirst);
    const page = Math.max(0, Math.min(asked, Math.ceil(waiting.length / pageSize) - 1));
    const pending = waiting.slice(page * pageSize, (page + 1) * pageSize);
    // The newest `recent` without sorting them all: a sorted window, entered only by a key
    // newer than its last.
    const top: PortalKey[] = [];
    for (const { key } of this.entries.values()) {
      if (key === null || (top.length === recent && newestFirst(key, top[recent - 1]!) >= 0)) continue;
      let at = top.length;
      while (at > 0 && newestFirst(key, top[at - 1]!) < 0) at--;
      top.splice(at, 0, key);
      if (top.length > recent) top.pop();
    }
    return { pending, page, pendingTotal: waiting.length, recent: top };
  }

  /** The portal wrote or changed the key file `keyId`: read it now (a stat and one parse). */
  written(keyId: string): void {
    this.drop(keyId); // parsed again even if its stamp looks the same
    this.reread(keyId, false, keyFilePath(this.configDir, keyId));
    this.ownChange();
  }

  /** The portal removed the key file `keyId`. */
  removed(keyId: string): void {
    this.drop(keyId);
    this.ownChange();
  }

  /** Stops the background sweep and the watch. */
  close(): void {
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer);
    this.journal.close();
  }

  /**
   * The directory's listing moved because this process wrote: no need to list it again. (A
   * change by another process in the same instant is still named by the watch.)
   */
  private ownChange(): void {
    if (this.listedStamp !== null && inodeOf(this.listedStamp) === inodeOf(this.dirStamp())) this.listedStamp = this.dirStamp();
  }

  private dirStamp(): string {
    const st = statSync(this.dir, { throwIfNoEntry: false });
    return st === undefined ? '' : `${st.ino}:${st.mtimeMs}`;
  }

  private listIds(): Set<string> {
    this.work.listings++;
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Set();
      throw err;
    }
    const ids = new Set<string>();
    for (const name of names) {
      const id = KEY_FILE.exec(name)?.[1];
      if (id !== undefined) ids.add(id);
    }
    return ids;
  }

  /** The listing changed: files new to it are read, files gone from it dropped. */
  private relist(stamp: string): void {
    const listed = this.listIds();
    for (const id of this.entries.keys()) if (!listed.has(id)) this.drop(id);
    for (const id of listed) if (!this.entries.has(id)) this.reread(id, false);
    this.listedStamp = stamp;
  }

  /** Every file stat'ed (read when changed), in slices; one at a time, concurrent callers share it. */
  private sweep(): Promise<void> {
    this.sweeping ??= this.sweepNow().finally(() => (this.sweeping = null));
    return this.sweeping;
  }

  private async sweepNow(): Promise<void> {
    this.work.sweeps++;
    // Watch first, then list: whatever changes after the listing is named by the watch. A
    // directory replaced since (another inode) needs a new watch.
    const stamp = this.dirStamp();
    if (this.listedStamp !== null && inodeOf(stamp) !== inodeOf(this.listedStamp)) {
      this.journal.close();
      this.journal = new ChangeJournal();
    }
    // (Events already collected stay: they only make a view read those files once more.)
    if (stamp !== '') this.journal.watch([this.dir]);
    // The listing and the drops in one turn: the portal's own writes cannot fall between them.
    const listed = this.listIds();
    for (const id of this.entries.keys()) if (!listed.has(id)) this.drop(id);
    this.listedStamp = stamp;
    const progress = this.loadProgress;
    if (!progress.done) progress.total = listed.size;
    let sliceFrom = performance.now();
    for (const id of listed) {
      this.reread(id, false);
      if (!progress.done) progress.read++;
      if (performance.now() - sliceFrom >= LOAD_SLICE_MS) {
        await yieldToRequests();
        // A developer waits for "My keys" (scanFor): its reads go first, this read resumes after.
        while (this.scanning > 0) await new Promise<void>((resume) => this.afterScans.push(resume));
        sliceFrom = performance.now();
      }
    }
  }

  /** Reads the file again if its stamp changed, it is new, or `force`; drops it when it is gone. */
  private reread(keyId: string, force: boolean, path = `${this.prefix}${keyId}.yaml`): void {
    const read = this.readChanged(keyId, force, path);
    if (read !== UNCHANGED) this.take(keyId, read.stamp, read.text);
  }

  /**
   * The file's text and stamp when it is new or its stamp changed (or `force`); UNCHANGED when
   * the index holds it as it is, or it is gone (then it is dropped).
   */
  private readChanged(keyId: string, force: boolean, path: string): { stamp: string; text: string } | typeof UNCHANGED {
    this.work.stats++;
    try {
      const st = statSync(path);
      const stamp = `${st.ino}:${st.size}:${st.mtimeMs}`;
      if (!force && this.entries.get(keyId)?.stamp === stamp) return UNCHANGED;
      return { stamp, text: readKeyFileText(path) };
    } catch {
      this.drop(keyId); // removed since the listing or the event (or not a regular file: no key)
      return UNCHANGED;
    }
  }

  /** Files the text of `keyId` (read at `stamp`) in place of what the index held of it. */
  private take(keyId: string, stamp: string, text: string): PortalKey | null {
    this.drop(keyId);
    // A file that is not (yet) a key declaration, e.g. one being written by hand, is kept as
    // such and parsed again once it changes; the compile refuses it meanwhile.
    this.work.parses++;
    const key = this.parse(text, keyId);
    this.entries.set(keyId, { stamp, key });
    if (key === null) return null;
    let owned = this.byOwner.get(key.owner);
    if (owned === undefined) this.byOwner.set(key.owner, (owned = new Map()));
    owned.set(keyId, key);
    if (key.pending) this.pendingIds.add(keyId);
    return key;
  }

  private drop(keyId: string): void {
    const entry = this.entries.get(keyId);
    if (entry === undefined) return;
    this.entries.delete(keyId);
    if (entry.key === null) return;
    const owned = this.byOwner.get(entry.key.owner);
    owned?.delete(keyId);
    if (owned?.size === 0) this.byOwner.delete(entry.key.owner);
    this.pendingIds.delete(keyId);
  }
}

/**
 * Whether a file's text can be judged not to be `owner`'s without parsing it: when `owner` is
 * printable ASCII without spaces or `'`. YAML writes such a string only as its characters as
 * they are (plain, quoted, a block scalar, behind a tag or an anchor in the same file) or with
 * backslash escapes in double quotes: folding adds spaces or line breaks, single quotes double a
 * `'`. So a file holding neither the owner's characters nor a backslash is not the owner's.
 */
function scannableOwner(owner: string): boolean {
  return /^[\x21-\x26\x28-\x7e]+$/.test(owner);
}

/**
 * Where a file's text may write `owner` (scannableOwner) as a whole scalar: its characters
 * between what can stand before a scalar (a space or line break, a quote, a flow indicator, the
 * `:` of a JSON-like key) and what can end one; `dev-70` does not name `dev-7`.
 */
function mayNameOwner(owner: string): RegExp {
  return new RegExp(`(?:^|[\\s"'\\[{,:])${owner.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?:$|[\\s"',:\\]}])`, 'm');
}

function inodeOf(stamp: string | null): string | null {
  return stamp === null ? null : stamp.split(':')[0]!;
}
