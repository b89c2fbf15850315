// The cap on keys per developer (`portal --developer-key-limit N|off`). The submission limiter
// bounds how fast a developer adds keys (30 an hour); this bounds how many they hold, so one
// account cannot grow the config directory and the bundle every gateway loads without end.
// Every portal key file counts, whatever its state: awaiting approval, active, switched off or
// expired, because each stays in the directory and the bundle until the platform team removes
// it; not counting them would let a developer switch off (or let expire, with a short-lived
// certificate of their own) and ask again, without end. A state change therefore never moves
// a count; only a file written or removed does.
//
// The count is kept in memory (OwnedKeyCounts): every portal key file is read once, when the
// portal starts; after that a new key costs one listing of DIR/keys/portal, and only files
// that appeared since the last look (written by another portal process, or by hand) are read. Files gone from the listing (a denied key, a file an admin deleted) free
// their place at once. The issuer asks and writes under the directory lock, so two requests
// (this portal's, or another portal process's) cannot both take the last place.
import { readFileSync } from 'node:fs';
import { keyFilePath, parsePortalKey, portalKeyIds } from './key-file.ts';

export const DEFAULT_DEVELOPER_KEY_LIMIT = 20;

/** The number of portal key files per owner, kept in step with DIR/keys/portal. */
export class OwnedKeyCounts {
  /** The owner of each portal key file read so far, by id ('' when it has none). */
  private readonly ownerOf = new Map<string, string>();
  private readonly held = new Map<string, number>();

  /** Reads every portal key file in `configDir` once. */
  constructor(private readonly configDir: string) {
    for (const id of portalKeyIds(configDir)) this.read(id);
  }

  /**
   * How many portal key files name `owner` as theirs. Call it under the directory lock: it
   * takes in the files added or removed by anyone since the last call (one listing; a file
   * already known is not read again).
   */
  count(owner: string): number {
    const listed = new Set(portalKeyIds(this.configDir));
    for (const id of this.ownerOf.keys()) if (!listed.has(id)) this.removed(id);
    for (const id of listed) if (!this.ownerOf.has(id)) this.read(id);
    return this.held.get(owner) ?? 0;
  }

  /** The portal wrote the new key file `keyId` for `owner` (undefined: a key without one). */
  written(keyId: string, owner: string | undefined): void {
    this.removed(keyId);
    this.ownerOf.set(keyId, owner ?? '');
    this.add(owner ?? '', 1);
  }

  /** The key file `keyId` is gone. */
  removed(keyId: string): void {
    const owner = this.ownerOf.get(keyId);
    if (owner === undefined) return;
    this.ownerOf.delete(keyId);
    this.add(owner, -1);
  }

  private read(keyId: string): void {
    let text: string;
    try {
      text = readFileSync(keyFilePath(this.configDir, keyId), 'utf8');
    } catch {
      return; // removed since the listing (by hand: the lock covers only mtlsgate's own edits)
    }
    // A file that is not (yet) a key declaration, e.g. one being written by hand, stays
    // unknown and is read again at the next count; the compile refuses it meanwhile.
    const key = parsePortalKey(text, keyId);
    if (key !== null) this.written(keyId, key.owner);
  }

  private add(owner: string, delta: number): void {
    if (owner === '') return; // keys without an owner are never capped
    const n = (this.held.get(owner) ?? 0) + delta;
    if (n === 0) this.held.delete(owner);
    else this.held.set(owner, n);
  }
}

/** The refusal's text, naming the count and the cap; null while the developer is under it. */
export function keyLimitProblem(held: number, limit: number | null): string | null {
  if (limit === null || held < limit) return null;
  return (
    `You have ${held} ${held === 1 ? 'key' : 'keys'} in this portal, and it issues at most ${limit} to one developer. ` +
    'Keys that are switched off, expired or awaiting approval count too, until the platform team removes them: ask them to remove one you no longer use.'
  );
}
