// What the load stage's walk (compiler/load.ts) found in each directory, kept by `compile --cache`
// (DIR/snapshot/listings.json) so that the next compile does not list directories that did not change:
// at 1,000,000 keys the config's certificate directories hold 1,000,000 entries, and listing them
// cost ~0.9 s of the recompile, only to learn that they hold no YAML file.
//
// A directory's listing (its YAML files and subdirectories, in walk order) is reused while the
// directory has the same inode, mtime and ctime: adding, removing or renaming an entry changes the
// directory's mtime (POSIX), and a file's own content is read by the load stage anyway. As for
// certificate witnesses, a directory whose mtime was within RACY_MS of the listing is not kept (a
// second change in the same mtime tick would go unseen), and a listing holding a symbolic link is
// never kept (its target may change without its directory changing). Listings are kept only when
// no ignore rule applies (.mtlsgateignore, --exclude). The file starts with the SHA-256 of the rest
// and names the compiler build that wrote it; anything else is ignored.
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { RACY_MS } from './certs.ts';
import { readDigestedJson, writeDigestedJson } from './digested-json.ts';
import { compilerCode } from './key-cache.ts';

const FORMAT = 'mtlsgate.dir-listings/v1';

/** One directory: its witness and the entries the walk uses ([name, is a directory]), sorted by name. */
interface DirListing {
  ino: number;
  mtimeMs: number;
  ctimeMs: number;
  entries: [string, boolean][];
}

export class DirListings {
  private readonly next = new Map<string, DirListing>();
  private changed = false;

  private constructor(
    private readonly file: string,
    private readonly previous: Map<string, DirListing>,
    private readonly racyMs: number,
  ) {}

  /** The listings in `cacheDir` (none when missing, corrupt or another build's). `racyMs`: tests only. */
  static read(cacheDir: string, racyMs = RACY_MS): DirListings {
    const file = join(cacheDir, 'snapshot', 'listings.json');
    const v = readDigestedJson(file) as { format?: string; code?: string; dirs?: [string, DirListing][] } | null;
    const ok = v !== null && typeof v === 'object' && v.format === FORMAT && v.code === compilerCode() && Array.isArray(v.dirs);
    return new DirListings(file, new Map(ok ? v.dirs : []), racyMs);
  }

  /** The kept listing of `dir` if its witness still holds. */
  reuse(dir: string, st: { ino: number; mtimeMs: number; ctimeMs: number }): DirListing['entries'] | null {
    const was = this.previous.get(dir);
    if (!was || was.ino !== st.ino || was.mtimeMs !== st.mtimeMs || was.ctimeMs !== st.ctimeMs) return null;
    this.next.set(dir, was);
    return was.entries;
  }

  /** A fresh listing of `dir`, stat'ed (`st`) before it was read, at `listedAt` (ms). */
  keep(dir: string, st: { ino: number; mtimeMs: number; ctimeMs: number }, entries: DirListing['entries'], listedAt: number): void {
    this.changed = true;
    if (listedAt - st.mtimeMs < this.racyMs || listedAt - st.ctimeMs < this.racyMs) return;
    this.next.set(dir, { ino: st.ino, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, entries });
  }

  /** Writes the listings of this walk when any was read again or one kept is gone (best effort). */
  save(): void {
    if (!this.changed && this.next.size === this.previous.size) return;
    try {
      mkdirSync(dirname(this.file), { recursive: true });
      writeDigestedJson(this.file, { format: FORMAT, code: compilerCode(), dirs: [...this.next] });
    } catch {}
  }
}
