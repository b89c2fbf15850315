// The portal's one in-memory index of DIR/keys/portal: every portal key file, parsed once,
// filed by owner. It serves the cap on keys per developer (portal/key-limit.ts), the "My keys"
// page and the admin page, which before read and parsed every key file at every view (7.2 s
// at 20,000 files, the portal answering no one meanwhile).
//
// The directory stays the truth: a second portal process on the same directory, `mtlsgate
// approve` and hand edits change files behind this process's back. So every use lists the
// directory and stats each file (one stat a file, no read): a file whose inode, size or mtime
// changed, or that is new, is read and parsed again; a file gone from the listing is dropped.
// The portal's own writes (a new key, an edit, a removal) update the index as they happen.
// An in-place edit that keeps the size within the file system's mtime resolution would be
// missed; the portal's own writes replace the file (new inode), and editors change mtime.
import { readFileSync, statSync } from 'node:fs';
import { join, sep } from 'node:path';
import { keyFilePath, newestFirst, PORTAL_KEYS_DIR, parsePortalKey, type PortalKey, portalKeyIds } from './key-file.ts';

/** The parse the index uses; tests pass a counting one to check what a page view parses. */
export type ParseKey = (text: string, keyId: string) => PortalKey | null;

interface Entry {
  /** inode, size and mtime of the file when it was parsed. */
  stamp: string;
  /** null: not (yet) a key declaration; read again when the file changes. */
  key: PortalKey | null;
}

export class PortalKeyIndex {
  private readonly entries = new Map<string, Entry>();
  /** Parsed keys by owner ('' for keys without one), by id. */
  private readonly byOwner = new Map<string, Map<string, PortalKey>>();
  /** Ids of the keys waiting for approval. */
  private readonly pendingIds = new Set<string>();
  /** DIR/keys/portal/ : a listed id's file is this plus `<id>.yaml` (cheaper than keyFilePath's check per file). */
  private readonly prefix: string;

  /** Reads nothing yet: the first query (or `refresh()`, at a signed-in portal's start) reads every file once. */
  constructor(
    private readonly configDir: string,
    private readonly parse: ParseKey = parsePortalKey,
  ) {
    this.prefix = join(configDir, PORTAL_KEYS_DIR) + sep;
  }

  /**
   * Takes in what changed in the directory since the last look: one listing and one stat per
   * file; only new or changed files are read. Every query below calls it first.
   */
  refresh(): void {
    const listed = new Set(portalKeyIds(this.configDir));
    for (const id of this.entries.keys()) if (!listed.has(id)) this.removed(id);
    // Listed ids are portal key ids (portalKeyIds matches PORTAL_KEY_ID).
    for (const id of listed) this.reread(id, `${this.prefix}${id}.yaml`);
  }

  /**
   * How many portal key files name `owner` as theirs, whatever their state. The issuer calls
   * it under the directory lock, so two requests cannot both take the last place.
   */
  count(owner: string): number {
    this.refresh();
    return this.byOwner.get(owner)?.size ?? 0;
  }

  /** The keys of `owner`, newest request first. */
  ownedBy(owner: string): PortalKey[] {
    this.refresh();
    return [...(this.byOwner.get(owner)?.values() ?? [])].sort(newestFirst);
  }

  /**
   * The keys waiting for approval, newest first: `pageSize` of them from page `asked` (0-based;
   * past the end: the last page), the page given and how many wait in all; and the `recent`
   * newest keys of all.
   */
  forAdmin(asked: number, pageSize: number, recent: number): { pending: PortalKey[]; page: number; pendingTotal: number; recent: PortalKey[] } {
    this.refresh();
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
    this.removed(keyId); // parsed again even if its stamp looks the same
    this.reread(keyId, keyFilePath(this.configDir, keyId));
  }

  /** The key file `keyId` is gone. */
  removed(keyId: string): void {
    const entry = this.entries.get(keyId);
    if (entry === undefined) return;
    this.entries.delete(keyId);
    if (entry.key !== null) this.unfile(entry.key);
  }

  /** Reads the file again if its stamp changed (or it is new). */
  private reread(keyId: string, path: string): void {
    let stamp: string;
    let text: string;
    try {
      const st = statSync(path);
      stamp = `${st.ino}:${st.size}:${st.mtimeMs}`;
      if (this.entries.get(keyId)?.stamp === stamp) return;
      text = readFileSync(path, 'utf8');
    } catch {
      this.removed(keyId); // removed since the listing (by hand: the lock covers only mtlsgate's own edits)
      return;
    }
    this.removed(keyId);
    // A file that is not (yet) a key declaration, e.g. one being written by hand, is kept as
    // such and parsed again once it changes; the compile refuses it meanwhile.
    const key = this.parse(text, keyId);
    this.entries.set(keyId, { stamp, key });
    if (key === null) return;
    let owned = this.byOwner.get(key.owner);
    if (owned === undefined) this.byOwner.set(key.owner, (owned = new Map()));
    owned.set(keyId, key);
    if (key.pending) this.pendingIds.add(keyId);
  }

  private unfile(key: PortalKey): void {
    const owned = this.byOwner.get(key.owner);
    owned?.delete(key.keyId);
    if (owned?.size === 0) this.byOwner.delete(key.owner);
    this.pendingIds.delete(key.keyId);
  }
}
