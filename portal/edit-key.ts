// Changing one portal key file as a transaction: under the config directory's lock, the new
// text replaces the file (or the file is removed), the directory is recompiled with the same
// compiler as `mtlsgate compile`, and the bundle is written atomically; if the compile or the
// write fails the file is put back as it was. Every change the portal makes after issuing a
// key (approve, deny, switch off, renew, remove a certificate) goes through here, so each one
// is a YAML file change in the directory, visible in git like any other.
import { rmSync } from 'node:fs';
import { writeFileAtomic } from '../common/atomic-write.ts';
import { writeBundle, type CompileFn } from './compile.ts';
import { withDirLock } from './dir-lock.ts';
import { keyFilePath, readKeyFileText, readPortalKey, type PortalKey } from './key-file.ts';
import type { PortalKeyIndex } from './key-index.ts';
import { errnoMessage } from '../common/errno.ts';

export interface EditTarget {
  configDir: string;
  bundlePath: string;
  compile: CompileFn;
  /** The portal's key index (the issuer's), told of each file an edit changes or removes. */
  keyCounts?: PortalKeyIndex | null;
}

/** What an edit decides: new text for the file, null to remove it, or a refusal. */
export type EditDecision = string | null | { refuse: number; message: string };

export type EditOutcome = { ok: true } | { ok: false; status: number; message: string; details?: string };

export async function editPortalKey(
  target: EditTarget,
  keyId: string,
  edit: (original: string, key: PortalKey) => EditDecision | Promise<EditDecision>,
): Promise<EditOutcome> {
  const { configDir, bundlePath, compile, keyCounts } = target;
  return withDirLock(configDir, async (): Promise<EditOutcome> => {
    // Read under the lock: the decision (ownership, state) is taken on what is being changed.
    const key = readPortalKey(configDir, keyId);
    if (key === null) return { ok: false, status: 404, message: 'No such key.' };
    const file = keyFilePath(configDir, keyId);
    const original = readKeyFileText(file);
    const decision = await edit(original, key);
    if (decision !== null && typeof decision === 'object') return { ok: false, status: decision.refuse, message: decision.message };
    if (decision === original) return { ok: true };
    if (decision === null) rmSync(file);
    else await writeFileAtomic(file, Buffer.from(decision));
    const restore = () => writeFileAtomic(file, Buffer.from(original));
    const compiled = await compile(configDir).catch((err: Error) => ({ bundle: null, report: err.message }));
    if (compiled.bundle === null) {
      await restore();
      return {
        ok: false,
        status: 409,
        message: 'The configuration did not compile with this change, so nothing was changed.',
        details: compiled.report,
      };
    }
    try {
      await writeBundle(bundlePath, compiled);
    } catch (err) {
      await restore();
      return {
        ok: false,
        status: 503,
        message: `The bundle could not be written (${errnoMessage(err)}), so nothing was changed. Try again later.`,
      };
    }
    if (decision === null) keyCounts?.removed(keyId);
    else keyCounts?.written(keyId);
    return { ok: true };
  });
}
