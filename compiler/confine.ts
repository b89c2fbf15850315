// Config reads stay inside the config directory. A symlink in the directory (or a certificate
// path like ../../.env or /proc/self/environ) could otherwise make the compiler read any file
// the CI job can read and echo a piece of it in a diagnostic, and so in a pull-request
// annotation. Every path is judged after symlinks are resolved (realpath), so a link inside
// the directory that points out of it is outside. `--allow-outside PATH` names a file or
// directory that may be read although it is outside (shared certificates, a monorepo layout).
import { lstatSync, realpathSync } from 'node:fs';
import { basename, dirname, resolve, sep } from 'node:path';

type Confined = { inside: true } | { inside: false; real: string };

function within(real: string, base: string): boolean {
  return real === base || real.startsWith(base.endsWith(sep) ? base : base + sep);
}

/** Absolute and already normalised (what path.resolve returns), so dirname and basename split it as realpath would. */
function isPlainAbsolute(path: string): boolean {
  return (
    sep === '/' &&
    path[0] === '/' &&
    !path.endsWith('/') &&
    !path.endsWith('/.') &&
    !path.endsWith('/..') &&
    !path.includes('//') &&
    !path.includes('/./') &&
    !path.includes('/../')
  );
}

/** realpath, or the path itself when it does not exist (reading it then fails on its own). */
export function realOrSelf(path: string): string {
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
    const { real, inside } = this.locate(absPath);
    return inside ? { inside } : { inside, real };
  }

  /** The realpath of `absPath` (itself when it does not exist), and whether it is inside. */
  locate(absPath: string): { real: string; inside: boolean } {
    const real = this.realpath(absPath);
    return { real, inside: within(real, this.root) || this.allowed.some((a) => within(real, a)) };
  }

  /**
   * Whether the file at `path` is inside, provided it is not itself a symlink: the realpath of
   * its directory plus its name. compiler/certs.ts then opens it with O_NOFOLLOW, which proves
   * the proviso (and falls back to `check` when the open fails): no lstat per certificate file.
   */
  insideUnlessLink(path: string): boolean {
    if (!isPlainAbsolute(path)) return this.check(path).inside;
    const dir = dirname(path);
    if (dir === path) return this.check(path).inside;
    const real = this.realDir(dir);
    const full = real.endsWith(sep) ? real + basename(path) : real + sep + basename(path);
    return within(full, this.root) || this.allowed.some((a) => within(full, a));
  }

  private realDir(dir: string): string {
    let real = this.dirs.get(dir);
    if (real === undefined) this.dirs.set(dir, (real = realOrSelf(dir)));
    return real;
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
    const absPath = isPlainAbsolute(path) ? path : resolve(path);
    const dir = dirname(absPath);
    if (dir === absPath) return realOrSelf(path);
    let isLink: boolean;
    try {
      isLink = lstatSync(absPath).isSymbolicLink();
    } catch {
      return realOrSelf(path);
    }
    if (isLink) return realOrSelf(path);
    const real = this.realDir(dir);
    return real.endsWith(sep) ? real + basename(absPath) : real + sep + basename(absPath);
  }
}
