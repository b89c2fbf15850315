// Which keys the bundle file the gateway reads holds, and whether each is active: what a key's
// status page shows. Reading and verifying a 100,000-key bundle (10 MB) for every status page
// cost 1-2 s under load, right after the portal wrote that very file; so the portal remembers
// the content of the last bundle it wrote to each path with the file's (size, mtime, inode),
// and reads the file only when it is not that one any more (`approve` in another process, a
// deploy, a restart).
import { statSync } from 'node:fs';
import { bundleHeadFile, readWireAt } from '../bundle/read-sharded.ts';
import type { WireContent } from '../bundle/types.ts';
import { keyRow } from '../bundle/wire.ts';

interface Written {
  size: number;
  mtimeMs: number;
  ino: number;
  wire: WireContent;
}

const written = new Map<string, Written>();

/** Records that `wire` is what the file at `path` now holds (called right after writing it). */
export function rememberWritten(path: string, wire: WireContent): void {
  try {
    const st = statSync(bundleHeadFile(path));
    written.set(path, { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, wire });
  } catch {
    written.delete(path);
  }
}

/** The content of the bundle file at `path` (null when unreadable): the remembered one while the file is still the one written. */
function contentOf(path: string): WireContent | null {
  const known = written.get(path);
  try {
    // A sharded bundle's manifest names every shard: while it is the one written, so are they.
    const st = statSync(bundleHeadFile(path));
    if (known && st.size === known.size && st.mtimeMs === known.mtimeMs && st.ino === known.ino) return known.wire;
    return readWireAt(path).wire;
  } catch {
    return null;
  }
}

/**
 * Whether the bundle at `path` holds key `id` as active (true), inactive (false) or not at all
 * (undefined); null when there is no readable bundle.
 */
export function bundleKeyState(path: string): ((id: string) => boolean | undefined) | null {
  const wire = contentOf(path);
  if (wire === null) return null;
  let inactive: Set<string> | undefined;
  return (id) => {
    if (keyRow(wire.keys.ids, id) < 0) return undefined;
    inactive ??= new Set(wire.keys.inactive);
    return !inactive.has(id);
  };
}
