// What the portal's key index (portal/key-index.ts) holds of DIR/keys/portal: each file either
// parsed (its key filed by owner, and among the keys waiting for approval when it waits) or read
// and not parsed yet (a sweep reads every text first, then parses them). When it reads is the
// index's business; this is what it holds, and the answers drawn from it.
import { enterNewest, newestFirst, type PortalKey } from './key-file.ts';
import type { KeyText } from './key-text.ts';

/** The parse the index uses; tests pass a counting (or slow) one to check what a page view parses. */
export type ParseKey = (text: string, keyId: string) => PortalKey | null;

interface Parsed {
  /** inode, size and mtime of the file when it was parsed. */
  stamp: string;
  /** null: not (yet) a key declaration; read again when the file changes. */
  key: PortalKey | null;
}

export class KeyEntries {
  private readonly parsed = new Map<string, Parsed>();
  /** Files read but not parsed yet, by id. */
  readonly unparsed = new Map<string, KeyText>();
  /** Parsed keys by owner ('' for keys without one), by id. */
  private readonly byOwner = new Map<string, Map<string, PortalKey>>();
  /** Ids of the keys waiting for approval. */
  private readonly pendingIds = new Set<string>();

  constructor(
    private readonly parse: ParseKey,
    private readonly work: { parses: number },
  ) {}

  /** How many files are parsed. */
  get parsedCount(): number {
    return this.parsed.size;
  }

  /** The stamp the file was parsed at; undefined when it is not parsed. */
  parsedStamp(keyId: string): string | undefined {
    return this.parsed.get(keyId)?.stamp;
  }

  /** Whether the file is held, parsed or not. */
  holds(keyId: string): boolean {
    return this.parsed.has(keyId) || this.unparsed.has(keyId);
  }

  /** The ids of every file held. */
  ids(): string[] {
    return [...this.parsed.keys(), ...this.unparsed.keys()];
  }

  /** The parsed keys of `owner`, newest request first. */
  ownedBy(owner: string): PortalKey[] {
    return [...(this.byOwner.get(owner)?.values() ?? [])].sort(newestFirst);
  }

  countOf(owner: string): number {
    return this.byOwner.get(owner)?.size ?? 0;
  }

  /** The parsed keys waiting for approval, newest first. */
  waiting(): PortalKey[] {
    return [...this.pendingIds].map((id) => this.parsed.get(id)!.key!).sort(newestFirst);
  }

  /** The `recent` newest parsed keys. */
  newest(recent: number): PortalKey[] {
    const top: PortalKey[] = [];
    for (const { key } of this.parsed.values()) if (key !== null) enterNewest(top, key, recent);
    return top;
  }

  /** Files the text of `keyId` (read at `stamp`) in place of what was held of it. */
  take(keyId: string, stamp: string, text: string): PortalKey | null {
    this.drop(keyId);
    // A file that is not (yet) a key declaration, e.g. one being written by hand, is kept as
    // such and parsed again once it changes; the compile refuses it meanwhile.
    this.work.parses++;
    const key = this.parse(text, keyId);
    this.parsed.set(keyId, { stamp, key });
    if (key === null) return null;
    let owned = this.byOwner.get(key.owner);
    if (owned === undefined) this.byOwner.set(key.owner, (owned = new Map()));
    owned.set(keyId, key);
    if (key.pending) this.pendingIds.add(keyId);
    return key;
  }

  /** Parses `raw`, read earlier, unless the file was parsed again or dropped since; its key, or undefined. */
  takeRead(keyId: string, raw: KeyText): PortalKey | null | undefined {
    return this.unparsed.get(keyId) === raw ? this.take(keyId, raw.stamp, raw.text) : undefined;
  }

  drop(keyId: string): void {
    this.unparsed.delete(keyId);
    const entry = this.parsed.get(keyId);
    if (entry === undefined) return;
    this.parsed.delete(keyId);
    if (entry.key === null) return;
    const owned = this.byOwner.get(entry.key.owner);
    owned?.delete(keyId);
    if (owned?.size === 0) this.byOwner.delete(entry.key.owner);
    this.pendingIds.delete(keyId);
  }
}
