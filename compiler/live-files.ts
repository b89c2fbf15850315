// The config directory as the live compile (compiler/live-compile.ts) reads it between full
// compiles: the directories the compiler's walk visits (to watch them), and one config file
// read as loadConfigFiles reads it.
import { lstatSync, readdirSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import type { IgnoreRules } from './ignore.ts';
import { readConfigBytes, type SourceFile, withoutBom } from './source.ts';

/** Config directories under root as the compiler's walk visits them; `symlink` when the tree has any. */
export function walkDirs(root: string, ignore: IgnoreRules): { dirs: Set<string>; symlink: boolean } {
  const dirs = new Set<string>();
  let symlink = false;
  const walk = (dir: string) => {
    dirs.add(dir);
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.name.startsWith('.')) continue;
      if (e.isSymbolicLink()) symlink = true;
      if (!e.isDirectory()) continue;
      const p = join(dir, e.name);
      if (!ignore.empty && ignore.ignores(relative(root, p).split(sep).join('/'), true)) continue;
      walk(p);
    }
  };
  walk(root);
  return { dirs, symlink };
}

/** A config file read as loadConfigFiles reads it; null when gone, 'odd' when only a full compile can say (not a plain UTF-8 file). */
export function readConfigFile(root: string, abs: string): SourceFile | null | 'odd' {
  let buf: Buffer;
  try {
    if (!lstatSync(abs).isFile()) return 'odd';
    buf = readConfigBytes(abs);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? null : 'odd';
  }
  const text = buf.toString('utf8');
  if (text.includes('\uFFFD')) return 'odd';
  return { path: relative(root, abs).split(sep).join('/'), absPath: abs, text: withoutBom(text) };
}
