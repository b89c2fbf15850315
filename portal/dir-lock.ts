// A lock on the config directory shared by every process that edits portal keys and rewrites
// the bundle (the portal, `mtlsgate approve`): without it an approval compiled before a new
// portal key but written after it would drop that key from the bundle. mkdir is atomic, so
// the lock is a directory (a dot-directory: the compiler never reads it) holding the owner pid.
import { mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readRegularFile } from '../common/regular-file.ts';
import { PORTAL_KEYS_DIR } from './key-file.ts';

const STALE_MS = 60_000;

function ownerAlive(lockDir: string): boolean {
  try {
    // A pid; anything but a small regular file (a named pipe left there) is no owner.
    const pid = Number(readRegularFile(join(lockDir, 'owner'), 64).toString('utf8'));
    if (!Number.isSafeInteger(pid) || pid <= 0) return false;
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function isStale(lockDir: string): boolean {
  try {
    const age = Date.now() - statSync(lockDir).mtimeMs;
    // A lock still without its owner file is being taken right now, unless it is old.
    return age > STALE_MS || (age > 1_000 && !ownerAlive(lockDir));
  } catch {
    return false; // released meanwhile: retry
  }
}

/** Runs `task` holding the config directory's lock; waits up to `timeoutMs` for it. */
export async function withDirLock<T>(configDir: string, task: () => Promise<T>, timeoutMs = 30_000): Promise<T> {
  const lockDir = join(configDir, PORTAL_KEYS_DIR, '.lock');
  mkdirSync(join(configDir, PORTAL_KEYS_DIR), { recursive: true });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      mkdirSync(lockDir);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (isStale(lockDir)) {
        rmSync(lockDir, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline)
        throw new Error(`the config directory is locked by another mtlsgate process (${lockDir}); remove it if no portal or approve is running`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  try {
    writeFileSync(join(lockDir, 'owner'), String(process.pid));
    return await task();
  } finally {
    rmSync(lockDir, { recursive: true, force: true });
  }
}
