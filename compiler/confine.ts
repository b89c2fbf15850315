// Config reads stay inside the config directory. A symlink in the directory (or a certificate
// path like ../../.env or /proc/self/environ) could otherwise make the compiler read any file
// the CI job can read and echo a piece of it in a diagnostic, and so in a pull-request
// annotation. Every path is judged after symlinks are resolved (realpath), so a link inside
// the directory that points out of it is outside. `--allow-outside PATH` names a file or
// directory that may be read although it is outside (shared certificates, a monorepo layout).
import { lstatSync, realpathSync } from 'node:fs';
import { basename, dirname, resolve, sep } from 'node:path';

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
  /** Directory (absolute, as given) -> its realpath; a config names 1,000,000 files from a few directories. */
  private readonly dirs = new Map<string, string>();

  constructor(
    /** As given: a worker thread makes its own Confinement from them (compiler/key-file.ts). */
    readonly rootArgument: string,
    readonly allowedArguments: readonly string[] = [],
  ) {
    this.root = realOrSelf(resolve(rootArgument));
    this.allowed = allowedArguments.map((p) => realOrSelf(resolve(p)));
  }

  /** Whether `absPath` (after symlinks) is inside the config directory or an allowed path. */
  check(absPath: string): Confined {
    const real = this.realpath(absPath);
    if (within(real, this.root) || this.allowed.some((a) => within(real, a))) return { inside: true };
    return { inside: false, real };
  }

  /**
   * realOrSelf(path), for less:
   * realpathSync lstats every component of the path, ~10 system calls for a certificate file of
   * a 1,000,000-key config. A file that is not itself a symlink has the realpath of its
   * directory (resolved once per directory) plus its name: one lstat. Symlinks, and paths that
   * cannot be lstat'ed, take the full realOrSelf, so the result is the same.
   */
  private realpath(path: string): string {
    // realpathSync resolves the path lexically first; most paths here already are (path.resolve).
    const absPath = sep === '/' && path[0] === '/' && !path.includes('/.') && !path.includes('//') && !path.endsWith('/') ? path : resolve(path);
    const dir = dirname(absPath);
    if (dir === absPath) return realOrSelf(path);
    let isLink: boolean;
    try {
      isLink = lstatSync(absPath).isSymbolicLink();
    } catch {
      return realOrSelf(path);
    }
    if (isLink) return realOrSelf(path);
    let real = this.dirs.get(dir);
    if (real === undefined) this.dirs.set(dir, (real = realOrSelf(dir)));
    return real.endsWith(sep) ? real + basename(absPath) : real + sep + basename(absPath);
  }
}
