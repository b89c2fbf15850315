// A compiled bundle as the CLI's readers take it (explain, who, diff): a bundle file, or a
// sharded bundle (`compile --shards`) given as its directory or its manifest.json.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { loadBundle } from '../bundle/read.ts';
import { isManifest, loadShardedBundle } from '../bundle/read-sharded.ts';
import type { Bundle } from '../bundle/types.ts';

/** Is `path` a sharded bundle's directory (one holding manifest.json)? */
export function isShardedDir(path: string): boolean {
  return statSync(path, { throwIfNoEntry: false })?.isDirectory() === true && existsSync(join(path, 'manifest.json'));
}

/** The bundle at `path` (bytes already read from it, when given). Throws with a message for the user. */
export function readBundleAt(path: string, bytes?: Buffer): Bundle {
  const dir = isShardedDir(path) ? path : null;
  const data = bytes ?? readFileSync(dir ? join(dir, 'manifest.json') : path);
  if (dir === null && !isManifest(data)) return loadBundle(data);
  const shards = join(dir ?? dirname(path), 'shards');
  return loadShardedBundle(data, (hex) => readFileSync(join(shards, `${hex}.json`)));
}
