// Config reads stay inside the config directory. A symlink in the directory (or a certificate
// path like ../../.env or /proc/self/environ) could otherwise make the compiler read any file
// the CI job can read and echo a piece of it in a diagnostic, and so in a pull-request
// annotation. Every path is judged after symlinks are resolved (realpath), so a link inside
// the directory that points out of it is outside. `--allow-outside PATH` names a file or
// directory that may be read although it is outside (shared certificates, a monorepo layout).
import { realpathSync } from 'node:fs';
import { resolve, sep } from 'node:path';

export type Confined = { inside: true } | { inside: false; real: string };

function within(real: string, base: string): boolean {
  return real === base || real.startsWith(base.endsWith(sep) ? base : base + sep);
}

/** realpath, or the path itself when it does not exist (reading it then fails on its own). */
function realOrSelf(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

export class Confinement {
  private readonly root: string;
  private readonly allowed: string[];

  constructor(root: string, allowOutside: readonly string[] = []) {
    this.root = realOrSelf(resolve(root));
    this.allowed = allowOutside.map((p) => realOrSelf(resolve(p)));
  }

  /** Whether `absPath` (after symlinks) is inside the config directory or an allowed path. */
  check(absPath: string): Confined {
    const real = realOrSelf(absPath);
    if (within(real, this.root) || this.allowed.some((a) => within(real, a))) return { inside: true };
    return { inside: false, real };
  }
}
