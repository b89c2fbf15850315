// The portal's one in-memory index of DIR/keys/portal: every portal key file, parsed once,
// filed by owner. It serves the cap on keys per developer (portal/key-limit.ts), the "My keys"
// page and the admin page, which before read and parsed every key file at every view (7.2 s
// at 20,000 files, the portal answering no one meanwhile).
//
// Start: every file is read once, in the background, a slice of at most LOAD_SLICE_MS at a
// time, so the portal answers from its first moment: first every file's text (a stat and a
// read, ~15% of the work), then their parses. Once the texts are in, "My keys", the admin page
// and the cap answer exactly, parsing only the texts that can matter to them (portal/key-text.ts
// says why the others cannot); every page asked meanwhile waits for that one pass (at most
// PAGE_WAIT_MS, then it says "loading", 503). Before (session 11) a signed-in portal read every
// file before it listened: 4.2 s at 20,000 files; before session 17 each "My keys" view read
// every file not read yet on its own, and the admin page and the cap waited for every parse.
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
import { KeyEntries, type ParseKey } from './key-entries.ts';
import { compareText, enterNewest, keyFilePath, PORTAL_KEYS_DIR, parsePortalKey, type PortalKey, readKeyFileText } from './key-file.ts';
import { KeyText, mayBeOwnedBy } from './key-text.ts';

/** How long the background read holds the event loop before it lets requests in. */
const LOAD_SLICE_MS = 10;
/**
 * How long a page asked during the first read waits for every file's text before it answers
 * "loading" (a page that reloads itself after 2 s). The texts take 0.4 s at 20,000 files on an
 * idle 2-core machine: a page that waits is sooner than one that reloads; the bound keeps a slow
 * file system (NFS, far more files) from holding the browser without a word.
 */
export const PAGE_WAIT_MS = 3000;
/** The background stat of every file, for file systems without inotify events. */
export const SWEEP_EVERY_MS = 60_000;
const KEY_FILE = /^(portal-[0-9a-f]{8})\.yaml$/;

/** readChanged: the index holds the file as it is (or it is gone, and dropped). */
const UNCHANGED = Symbol('unchanged');

const yieldToRequests = () => new Promise<void>((resolve) => setImmediate(resolve));

export interface KeyIndexOptions {
  /** Reads a key file's text (tests slow it down to see the read under way). */
  readText?: (path: string) => string;
  /** PAGE_WAIT_MS unless told. */
  pageWaitMs?: number;
}

export class PortalKeyIndex {
  /** What the index holds of each file (parsed, or read and not parsed yet). */
  private readonly held: KeyEntries;
  /** DIR/keys/portal */
  private readonly dir: string;
  /** DIR/keys/portal/ : a listed id's file is this plus `<id>.yaml` (cheaper than keyFilePath's check per file). */
  private readonly prefix: string;
  private journal = new ChangeJournal();
  /** `inode:mtime` of the directory when it was last listed ('' when absent; null: never listed). */
  private listedStamp: string | null = null;
  private firstLoad: Promise<void> | null = null;
  /** Settles once the first read has every file's text (or failed); and what settles it. */
  private textsIn: Promise<void> = Promise.resolve();
  private textsRead: (() => void) | null = null;
  /** The watch was lost (or the directory replaced) while a page read during the first read: the next fresh() sweeps. */
  private lostDuringRead = false;
  private sweeping: Promise<void> | null = null;
  private sweepTimer: NodeJS.Timeout | null = null;
  private readonly loadProgress = { read: 0, total: 0, done: false };
  /** Pages parsing what they need during the first read (exactFor), and the read's resumption waiting for them to end. */
  private scanning = 0;
  private readonly afterScans: (() => void)[] = [];
  /**
   * What the index has done so far: files stat'ed, files parsed, listings, full sweeps (tests and
   * the bench read it); pageParses: the parses a page or count made itself during the first read
   * (the read's own, which go on meanwhile, are not among them).
   */
  readonly work = { stats: 0, parses: 0, listings: 0, sweeps: 0, scans: 0, pageParses: 0 };

  private readonly readText: (path: string) => string;
  private readonly pageWaitMs: number;

  /** Reads nothing yet: `load()` (a signed-in portal's start) or the first query reads every file once. */
  constructor(
    private readonly configDir: string,
    parse: ParseKey = parsePortalKey,
    private readonly sweepEveryMs = SWEEP_EVERY_MS,
    options: KeyIndexOptions = {},
  ) {
    this.held = new KeyEntries(parse, this.work);
    this.dir = join(configDir, PORTAL_KEYS_DIR);
    this.prefix = this.dir + sep;
    this.readText = options.readText ?? readKeyFileText;
    this.pageWaitMs = options.pageWaitMs ?? PAGE_WAIT_MS;
  }

  /** Starts reading every key file in the background (once); settles when all are in. */
  load(): Promise<void> {
    if (this.firstLoad !== null) return this.firstLoad;
    this.textsIn = new Promise<void>((resolve) => (this.textsRead = resolve));
    this.firstLoad = this.sweep().then(
      () => {
        this.loadProgress.done = true;
        this.sweepTimer = setInterval(() => void this.sweep().catch(() => {}), this.sweepEveryMs).unref();
      },
      (err: unknown) => {
        this.firstLoad = null; // the next query tries again (and reports its error)
        this.textsRead?.(); // pages waiting for the texts go on to that query
        throw err;
      },
    );
    return this.firstLoad;
  }

  /** The first read in progress, or null: files whose text is read so far, files parsed, of how many. */
  get loading(): { read: number; parsed: number; total: number } | null {
    if (this.firstLoad === null || this.loadProgress.done) return null;
    const { read, total } = this.loadProgress;
    return { read, parsed: Math.min(total, this.held.parsedCount), total };
  }

  /**
   * Whether the pages can answer now (every file's text read, or not reading), waiting at most
   * `waitMs` for it. A page that gets false says "loading" (503) rather than hold the browser.
   */
  async answersWithin(waitMs = this.pageWaitMs): Promise<boolean> {
    if (this.textsAllRead()) return true;
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), waitMs)));
    try {
      return await Promise.race([this.textsIn.then(() => true as const), waited]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Whether every file's text is read: no first read runs, or its texts are in. */
  private textsAllRead(): boolean {
    const loading = this.loading;
    return loading === null || loading.read === loading.total;
  }

  /**
   * Takes in what changed in the directory since the last look: the files the watch named are
   * read again; a stat of the directory catches a listing change the watch missed; a lost watch
   * means looking at every file. Every query below calls it first.
   */
  async fresh(): Promise<void> {
    await this.load();
    await this.takeChanges(true);
  }

  /**
   * fresh() without waiting for the first read: false (nothing taken; the next fresh() sweeps)
   * when only a sweep of every file can tell what changed (the watch lost, the directory
   * replaced) and `sweepIfLost` is false.
   */
  private async takeChanges(sweepIfLost: boolean): Promise<boolean> {
    // Delivers the events already queued in the kernel: a change made before this view was asked for is among them.
    const { paths, lost } = await this.journal.take();
    let stamp = this.dirStamp();
    if (lost || this.lostDuringRead || !this.journal.watches(this.dir) || inodeOf(stamp) !== inodeOf(this.listedStamp)) {
      this.lostDuringRead = !sweepIfLost;
      if (!sweepIfLost) return false;
      await this.sweep();
      stamp = this.listedStamp!;
    }
    for (const path of paths) {
      const id = KEY_FILE.exec(basename(path))?.[1];
      // Read again even when the stamp looks the same: an edit within the mtime resolution is seen too.
      if (id !== undefined && dirname(path) === this.dir) this.reread(id, true);
    }
    if (stamp !== this.listedStamp) this.relist(stamp);
    return true;
  }

  /**
   * How many portal key files name `owner` as theirs, whatever their state. The issuer calls
   * it under the directory lock, so two requests cannot both take the last place. During the
   * first read: exact once every file's text is read (exactFor), never a count of a part.
   */
  async count(owner: string): Promise<number> {
    const mayOwn = mayBeOwnedBy(owner);
    await this.exactFor((raw) => mayOwn(raw.text));
    return this.held.countOf(owner);
  }

  /** The keys of `owner`, newest request first. */
  async ownedBy(owner: string): Promise<PortalKey[]> {
    const mayOwn = mayBeOwnedBy(owner);
    await this.exactFor((raw) => mayOwn(raw.text));
    return this.held.ownedBy(owner);
  }

  /**
   * Brings the index up to date for whatever `mayMatter` passes. After the first read:
   * fresh(). During it: waits for every file's text (one pass, shared by every page and count
   * asked meanwhile; each used to read every file not read yet on its own), takes in what the
   * watch named since, then parses the texts `mayMatter` passes, a slice at a time (the read's
   * own parses wait meanwhile; a file parsed here is not parsed again). The others cannot
   * matter (portal/key-text.ts), so the answer is the one a finished read gives.
   */
  private async exactFor(mayMatter: (raw: KeyText) => boolean): Promise<void> {
    // (A read that failed and was started again by another query has a new textsIn.)
    while (!this.textsAllRead()) await this.textsIn;
    if (this.loading === null || !(await this.takeChanges(false))) return this.fresh();
    await this.parseWhere(([, raw]) => mayMatter(raw));
  }

  /** Parses the unparsed files `wanted` picks, in slices; the read's own parses wait meanwhile. */
  private async parseWhere(wanted: (file: [string, KeyText]) => boolean): Promise<void> {
    this.work.scans++;
    this.scanning++;
    try {
      let sliceFrom = performance.now();
      for (const [id, raw] of [...this.held.unparsed].filter(wanted)) {
        this.held.takeRead(id, raw);
        this.work.pageParses++;
        if (performance.now() - sliceFrom >= LOAD_SLICE_MS) {
          await yieldToRequests();
          sliceFrom = performance.now();
        }
      }
    } finally {
      if (--this.scanning === 0) for (const resume of this.afterScans.splice(0)) resume();
    }
  }

  /**
   * The keys waiting for approval, newest first: `pageSize` of them from page `asked` (0-based;
   * past the end: the last page), the page given and how many wait in all; and the `recent`
   * newest keys of all. During the first read: exact too, from the texts that may hold a key
   * waiting, and those that may be among the newest (KeyText).
   */
  async forAdmin(asked: number, pageSize: number, recent: number): Promise<{ pending: PortalKey[]; page: number; pendingTotal: number; recent: PortalKey[] }> {
    await this.exactFor((raw) => raw.mayBePending);
    if (this.held.unparsed.size > 0) this.parseNewest(recent);
    const waiting = this.held.waiting();
    const page = Math.max(0, Math.min(asked, Math.ceil(waiting.length / pageSize) - 1));
    const pending = waiting.slice(page * pageSize, (page + 1) * pageSize);
    return { pending, page, pendingTotal: waiting.length, recent: this.held.newest(recent) };
  }

  /**
   * Parses the unparsed files that may be among the `recent` newest keys: by their bound
   * (KeyText.newestBound), the highest first, until the next cannot be newer than the newest
   * `recent` parsed. A file the portal wrote is bounded by its own request time: ~`recent` parses.
   */
  private parseNewest(recent: number): void {
    const top = this.held.newest(recent);
    const floor = () => (top.length === recent ? top[recent - 1]!.requestedAt : '');
    const above = floor();
    const candidates = [...this.held.unparsed].filter(([, raw]) => compareText(raw.newestBound, above) >= 0);
    candidates.sort(([, a], [, b]) => compareText(b.newestBound, a.newestBound));
    for (const [id, raw] of candidates) {
      if (top.length === recent && compareText(raw.newestBound, floor()) < 0) break;
      const key = this.held.takeRead(id, raw);
      this.work.pageParses++;
      if (key) enterNewest(top, key, recent);
    }
  }

  /** The portal wrote or changed the key file `keyId`: read it now (a stat and one parse). */
  written(keyId: string): void {
    this.held.drop(keyId); // parsed again even if its stamp looks the same
    this.reread(keyId, false, keyFilePath(this.configDir, keyId));
    this.ownChange();
  }

  /** The portal removed the key file `keyId`. */
  removed(keyId: string): void {
    this.held.drop(keyId);
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
    this.dropUnlisted(listed);
    // (A file read but not parsed yet is parsed by the read, or a page that needs it.)
    for (const id of listed) if (!this.held.holds(id)) this.reread(id, false);
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
    this.dropUnlisted(listed);
    this.listedStamp = stamp;
    const progress = this.loadProgress;
    if (!progress.done) progress.total = listed.size;
    // The texts first, then the parses: a page asked meanwhile waits only for the texts (exactFor).
    let sliceFrom = performance.now();
    for (const id of listed) {
      const read = this.readChanged(id, false, `${this.prefix}${id}.yaml`);
      if (read !== UNCHANGED) this.held.unparsed.set(id, new KeyText(read.stamp, read.text));
      if (!progress.done) progress.read++;
      if (performance.now() - sliceFrom >= LOAD_SLICE_MS) {
        await yieldToRequests();
        sliceFrom = performance.now();
      }
    }
    this.textsRead?.();
    this.textsRead = null;
    for (const [id, raw] of this.held.unparsed) {
      this.held.take(id, raw.stamp, raw.text);
      if (performance.now() - sliceFrom >= LOAD_SLICE_MS) {
        await yieldToRequests();
        // A page waits for what it parses (exactFor): its parses go first, this read resumes after.
        while (this.scanning > 0) await new Promise<void>((resume) => this.afterScans.push(resume));
        sliceFrom = performance.now();
      }
    }
  }

  /** Drops every file, parsed or not, that `listed` no longer holds. */
  private dropUnlisted(listed: Set<string>): void {
    for (const id of this.held.ids()) if (!listed.has(id)) this.held.drop(id);
  }

  /** Reads the file again if its stamp changed, it is new, or `force`; drops it when it is gone. */
  private reread(keyId: string, force: boolean, path = `${this.prefix}${keyId}.yaml`): void {
    const read = this.readChanged(keyId, force, path);
    if (read !== UNCHANGED) this.held.take(keyId, read.stamp, read.text);
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
      if (!force && this.held.parsedStamp(keyId) === stamp) return UNCHANGED;
      return { stamp, text: this.readText(path) };
    } catch {
      this.held.drop(keyId); // removed since the listing or the event (or not a regular file: no key)
      return UNCHANGED;
    }
  }
}

function inodeOf(stamp: string | null): string | null {
  return stamp === null ? null : stamp.split(':')[0]!;
}
