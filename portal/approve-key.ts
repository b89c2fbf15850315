// Approving a portal key that waits for approval: `is_inactive: true` becomes false in its
// file (comments kept), the directory is recompiled, and the bundle rewritten when asked. A
// recompile that fails puts the file back as it was.
import { existsSync } from 'node:fs';
import { writeFileAtomic } from '../common/atomic-write.ts';
import { compileConfig, type Compiled, writeBundle, type CompileFn } from './compile.ts';
import { withDirLock } from './dir-lock.ts';
import { approvedKeyFile, keyFilePath, PORTAL_KEY_ID, PORTAL_KEYS_DIR, readKeyFileText } from './key-file.ts';
import { errnoMessage } from '../common/errno.ts';

export interface ApproveResult {
  /** 0 approved (or already active), 1 not approvable / config errors, 2 bad id or I/O. */
  code: 0 | 1 | 2;
  /**
   * A word for scripts (`approve --format json`): approved, already_active; or why not:
   * bad_id, no_such_key, not_a_key, config_errors, io.
   */
  outcome: 'approved' | 'already_active' | 'bad_id' | 'no_such_key' | 'not_a_key' | 'config_errors' | 'io';
  message: string;
  /** Compiler diagnostics when the recompile failed. */
  report?: string;
  /** The failed compile itself (its diagnostics), when the recompile failed. */
  compiled?: Pick<Compiled, 'diagnostics' | 'errorCount' | 'warningCount'>;
  /** Whether the bundle was rewritten (only with a bundle path and an approval that went through). */
  bundleWritten?: boolean;
}

export async function approveKey(
  configDir: string,
  keyId: string,
  bundlePath: string | undefined,
  compile: CompileFn = compileConfig,
  now = new Date(),
): Promise<ApproveResult> {
  if (!PORTAL_KEY_ID.test(keyId)) {
    return {
      code: 2,
      outcome: 'bad_id',
      message: `${JSON.stringify(keyId)} is not a portal key id: the portal issues ids like portal-1a2b3c4d (see the request's status page or keys/portal/)`,
    };
  }
  const file = keyFilePath(configDir, keyId);
  if (!existsSync(file))
    return { code: 1, outcome: 'no_such_key', message: `no portal key ${keyId}: ${PORTAL_KEYS_DIR}/${keyId}.yaml does not exist in ${configDir}` };
  // The portal may be adding a key right now: edit, compile and write the bundle under its lock.
  return withDirLock(configDir, () => approveLocked(configDir, keyId, file, bundlePath, compile, now));
}

async function approveLocked(
  configDir: string,
  keyId: string,
  file: string,
  bundlePath: string | undefined,
  compile: CompileFn,
  now: Date,
): Promise<ApproveResult> {
  let original: string;
  try {
    original = readKeyFileText(file);
  } catch (err) {
    return { code: 2, outcome: 'io', message: `cannot read ${file}: ${errnoMessage(err)}` };
  }
  const approved = approvedKeyFile(original, now);
  if (approved === null) return { code: 1, outcome: 'not_a_key', message: `${file} is not a readable key declaration (fix or remove it by hand)` };
  if (approved.wasPending) await writeFileAtomic(file, Buffer.from(approved.text));
  const compiled = await compile(configDir);
  if (compiled.bundle === null) {
    if (approved.wasPending) await writeFileAtomic(file, Buffer.from(original));
    return {
      code: 1,
      outcome: 'config_errors',
      message: `${keyId} was not approved: the configuration does not compile (the key file is unchanged)`,
      report: compiled.report,
      compiled,
    };
  }
  if (bundlePath !== undefined) {
    try {
      await writeBundle(bundlePath, compiled);
    } catch (err) {
      if (approved.wasPending) await writeFileAtomic(file, Buffer.from(original));
      return {
        code: 2,
        outcome: 'io',
        message: `${keyId} was not approved: cannot write the bundle ${bundlePath}: ${errnoMessage(err)}`,
      };
    }
  }
  const what = approved.wasPending ? `approved ${keyId}: it is active` : `${keyId} was already active`;
  const where =
    bundlePath !== undefined
      ? `; bundle written to ${bundlePath} (a gateway watching it reloads)`
      : '; the gateway serves it once the bundle is recompiled (pass -o OUT, or run mtlsgate compile)';
  return { code: 0, outcome: approved.wasPending ? 'approved' : 'already_active', message: what + where, bundleWritten: bundlePath !== undefined };
}
