// Every file below a directory, for the commands that read a tree the user names (`who --certs`,
// `import`). Symlinks are followed, and each real directory is walked once: two links to "."
// would otherwise branch the walk at every level (2^40 paths before the kernel's ELOOP).
import { readdirSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The paths of the files below `dir`, depth first, each directory's entries in name order.
 * `skipHidden`: names starting with "." are passed over, directories too; `walked`: the real
 * directories walked already, shared by calls over several roots.
 */
export function filesUnder(dir: string, opts: { skipHidden: boolean; walked?: Set<string> }): string[] {
  const out: string[] = [];
  const seen = opts.walked ?? new Set<string>();
  const walk = (d: string) => {
    const real = realpathSync(d);
    if (seen.has(real)) return;
    seen.add(real);
    for (const name of readdirSync(d).sort()) {
      if (opts.skipHidden && name.startsWith('.')) continue;
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(p);
    }
  };
  walk(dir);
  return out;
}
