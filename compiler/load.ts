// Stage 1: find the config files (every *.yaml / *.yml under the directory, recursively, in a
// stable order) and read them as UTF-8 text. Unreadable or non-UTF-8 files become diagnostics.
import { readdirSync, type Stats, statSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { Confinement } from './confine.ts';
import type { DirListings } from './dir-listings.ts';
import type { DiagnosticLog } from './diagnostics.ts';
import { quotedPath } from './excerpt.ts';
import { IgnoreRules } from './ignore.ts';
import { type KnownFiles, lazySourceFile, statKey } from './known-files.ts';
import { MAX_CONFIG_FILE_BYTES, readConfigBytes, type SourceFile, withoutBom } from './source.ts';
import { NotARegularFileError } from '../common/regular-file.ts';
import { errnoMessage } from '../common/errno.ts';

/** The config directory itself is missing or not a directory: an I/O error, not a config one. */
export class ConfigDirError extends Error {
  override name = 'ConfigDirError';
}

const YAML_FILE = /\.ya?ml$/i;

/**
 * Collects *.yaml / *.yml under `dir`, sorted by name at each level. Symlinks are followed,
 * each real directory once (a link loop ends there). A subdirectory that cannot be listed is a
 * diagnostic; only the top directory failing is fatal (the caller's ConfigDirError).
 * `listings`: what the previous compile found in directories that did not change since (--cache).
 */
function walk(
  root: string,
  dir: string,
  out: string[],
  seen: Set<string>,
  log: DiagnosticLog,
  ignore: IgnoreRules,
  confine: Confinement,
  listings: DirListings | undefined,
): void {
  // (One lstat for a directory that is not a link: its parent's realpath is known.)
  const { real, inside } = confine.locate(dir);
  if (!inside) {
    outsideReported(root, dir, real, log);
    return;
  }
  if (seen.has(real)) return;
  seen.add(real);
  // With a compile cache and no ignore rules: a directory that did not change is not listed again.
  let witness: Stats | undefined;
  let listedAt = 0;
  if (listings && ignore.empty) {
    listedAt = Date.now();
    try {
      witness = statSync(dir);
    } catch {}
    const kept = witness && listings.reuse(dir, witness);
    if (kept) {
      for (const [name, isDir] of kept) {
        if (isDir) walk(root, join(dir, name), out, seen, log, ignore, confine, listings);
        else out.push(join(dir, name));
      }
      return;
    }
  }
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    if (dir === root) throw err;
    const path = relative(root, dir).split(sep).join('/');
    log.reportAt('E_FILE_READ', path, 1, 1, `cannot list directory ${path}: ${errnoMessage(err)}`);
    return;
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  // What a later walk may reuse (dir-listings.ts): the YAML files and directories, unless a link is among them.
  const used: [string, boolean][] | null = witness ? [] : null;
  let linked = false;
  for (const e of entries) {
    // Dot-directories (.git, editor state) are never config.
    if (e.name.startsWith('.')) continue;
    let isDir = e.isDirectory();
    let isFile = e.isFile();
    // Most entries of a big config are certificate files (1,000,000 of them): skipped before a
    // path is built when nothing below could use them (not YAML, not a link); ignore rules
    // cannot change that, so they are not tested against them.
    if (isFile && !YAML_FILE.test(e.name) && !e.isSymbolicLink()) continue;
    const p = join(dir, e.name);
    if (e.isSymbolicLink()) {
      try {
        const st = statSync(p);
        isDir = st.isDirectory();
        isFile = st.isFile();
      } catch {
        isFile = YAML_FILE.test(e.name); // a dangling link named *.yaml: reported when read
      }
    }
    if ((isDir || isFile) && !ignore.empty && ignore.ignores(relative(root, p).split(sep).join('/'), isDir)) continue;
    if (e.isSymbolicLink()) linked = true;
    if (isDir) {
      used?.push([e.name, true]);
      walk(root, p, out, seen, log, ignore, confine, listings);
    } else if (isFile && YAML_FILE.test(e.name)) {
      used?.push([e.name, false]);
      out.push(p);
    }
  }
  if (used && witness && !linked) listings!.keep(dir, witness, used, listedAt);
}

/** A config file or directory that resolves (symlinks followed) outside the config directory: not read. */
function outsideReported(root: string, absPath: string, real: string, log: DiagnosticLog): void {
  const path = relative(root, absPath).split(sep).join('/');
  log.reportAt(
    'E_PATH_OUTSIDE',
    path,
    1,
    1,
    `${path} resolves to ${quotedPath(real)}, outside the config directory: not read (move it inside, or allow it with --allow-outside PATH)`,
  );
}

/** Offset (in bytes) of the first byte that is not valid UTF-8, or -1. */
function firstInvalidUtf8(buf: Buffer): number {
  let i = 0;
  while (i < buf.length) {
    const b = buf[i];
    let n = 0;
    let min = 0;
    if (b < 0x80) {
      i++;
      continue;
    } else if (b >= 0xc2 && b <= 0xdf) {
      n = 1;
      min = 0x80;
    } else if (b >= 0xe0 && b <= 0xef) {
      n = 2;
      min = 0x800;
    } else if (b >= 0xf0 && b <= 0xf4) {
      n = 3;
      min = 0x10000;
    } else return i;
    let cp = b & (0x3f >> n);
    for (let k = 1; k <= n; k++) {
      const c = buf[i + k];
      if (c === undefined || (c & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (c & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += n + 1;
  }
  return -1;
}

/**
 * Reads every config file under `dir` but those .mtlsgateignore or `exclude` (gitignore syntax)
 * name. Throws ConfigDirError only when `dir` itself is unusable.
 * `known` (--cache): files whose stat still equals the one the snapshot recorded with their
 * text's SHA-256 are not read now (known-files.ts: their text is read only if something asks).
 */
export function loadConfigFiles(
  dir: string,
  log: DiagnosticLog,
  exclude: readonly string[] = [],
  confine: Confinement = new Confinement(dir),
  listings?: DirListings,
  known?: KnownFiles,
): SourceFile[] {
  const root = resolve(dir);
  let st;
  try {
    st = statSync(root);
  } catch (err) {
    throw new ConfigDirError(`config directory ${dir} cannot be read: ${errnoMessage(err)}`);
  }
  if (!st.isDirectory()) throw new ConfigDirError(`${dir} is not a directory (give the config directory holding the *.yaml files)`);
  const paths: string[] = [];
  try {
    walk(root, root, paths, new Set(), log, IgnoreRules.forDir(root, exclude), confine, listings);
  } catch (err) {
    throw new ConfigDirError(`config directory ${dir} cannot be listed: ${(err as Error).message}`);
  }
  const files: SourceFile[] = [];
  // A stat is recorded only for a file last changed before this (known-files.ts: the racy rule).
  const settledBefore = known ? known.settledBefore() : 0;
  for (const absPath of paths) {
    const path = relative(root, absPath).split(sep).join('/');
    const where = confine.check(absPath);
    if (!where.inside) {
      outsideReported(root, absPath, where.real, log);
      continue;
    }
    // Taken before the read: a change after it gives another stat next time.
    const stat = known ? statKey(absPath, settledBefore) : undefined;
    if (known && stat) {
      const sha = known.textOf(absPath, stat);
      if (sha !== undefined) {
        files.push(lazySourceFile(path, absPath, sha, stat));
        continue;
      }
    }
    let buf: Buffer;
    try {
      buf = readConfigBytes(absPath);
    } catch (err) {
      if (err instanceof NotARegularFileError && err.tooLarge)
        log.reportAt(
          'E_FILE_TOO_LARGE',
          path,
          1,
          1,
          `${path} is not read: ${err.message} (${MAX_CONFIG_FILE_BYTES / 1024 / 1024} MiB); split it into several files`,
        );
      else log.reportAt('E_FILE_READ', path, 1, 1, `cannot read ${path}: ${errnoMessage(err)}`);
      continue;
    }
    let text = buf.toString('utf8');
    // U+FFFD marks a decoding error, or a real U+FFFD in the file: only then scan the bytes.
    if (text.includes('\uFFFD')) {
      const bad = firstInvalidUtf8(buf);
      if (bad !== -1) {
        const before = buf.subarray(0, bad).toString('utf8');
        const lineStart = before.lastIndexOf('\n') + 1;
        const line = before.split('\n').length;
        log.reportAt(
          'E_ENCODING',
          path,
          line,
          before.length - lineStart + 1,
          `${path} is not UTF-8: byte 0x${buf[bad].toString(16).padStart(2, '0')} at offset ${bad} is not valid UTF-8`,
        );
        continue;
      }
    }
    text = withoutBom(text);
    files.push(stat ? { path, absPath, text, stat } : { path, absPath, text });
  }
  return files;
}
