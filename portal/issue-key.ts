// Issuing a key: validate the certificate against the current config, check the proof that
// the submitter holds its private key, write DIR/keys/portal/<id>.yaml, recompile DIR into
// the bundle. One change at a time (a promise chain shared with every other portal change),
// and a failed recompile removes the new file: the directory is never left with a key that
// breaks it.
import { existsSync, rmSync } from 'node:fs';
import { isShardedDir } from '../bundle/read-sharded.ts';
import { loadCatalog, type CatalogEntry } from './catalog.ts';
import { writeFileAtomic } from '../common/atomic-write.ts';
import { compileConfig, writeBundle, type CompileFn } from './compile.ts';
import { withDirLock } from './dir-lock.ts';
import { keyFilePath, newKeyId, newReceipt, renderKeyFile } from './key-file.ts';
import { PortalKeyIndex } from './key-index.ts';
import { keyLimitProblem } from './key-limit.ts';
import type { FormError } from './page.ts';
import { checkProof, proofMessage } from './proof.ts';
import { SerialQueue } from './queue.ts';
import { validateCertificate, type CertProblem } from './validate-cert.ts';
import { errnoMessage } from '../common/errno.ts';
import { readRegularFile } from '../common/regular-file.ts';
import { MAX_BUNDLE_BYTES } from '../common/size-limits.ts';

interface IssueInput {
  policy: string;
  developer: string;
  /** The certificate as submitted (text or file bytes). */
  certificate: Buffer;
  /** The one-time challenge shown with the form and the developer's base64 signature of it. */
  proof: { challenge: string; signature: string };
  /**
   * Uses the challenge up; false when it is not (or no longer) valid for this browser. Called
   * only once everything else passed, inside the queue, so one challenge admits one key.
   */
  consumeChallenge: (challenge: string) => boolean;
  /** The signed-in subject that will own the key (`owner:`); undefined on a loopback-only portal. */
  owner?: string;
  /** Problems the caller already found in the other fields: reported together with ours, and nothing is written. */
  fieldErrors?: FormError[];
}

export type IssueOutcome =
  | {
      ok: true;
      keyId: string;
      fingerprint: string;
      pending: boolean;
      entry: CatalogEntry;
      /** The secret that shows this key again on a loopback-only portal (only its hash is kept). */
      receipt: string;
    }
  | {
      ok: false;
      /** HTTP status for the answer: 422 invalid input, 403 the developer's key limit, 409 recompile refused, 503 config broken. */
      status: number;
      errors: FormError[];
      /** The problem with the certificate, if that is what was refused. */
      certProblem?: CertProblem;
    };

interface IssuerOptions {
  configDir: string;
  bundlePath: string;
  compile?: CompileFn;
  now?: () => Date;
  /** The queue every change of this portal goes through (shared with key edits). */
  queue?: SerialQueue;
  /** Keys one owner may hold (portal/key-limit.ts); null or undefined: no cap. Keys without an owner are never capped. */
  developerKeyLimit?: number | null;
  /** The portal's key index; default: one on `configDir` (it reads the files at its first use). */
  keyIndex?: PortalKeyIndex;
}

export class Issuer {
  private readonly queue: SerialQueue;
  private readonly compile: CompileFn;
  private readonly now: () => Date;
  /**
   * The portal's index of its key files (count per owner for the cap, and the key pages),
   * made here (or shared through `opts.keyIndex`); it reads the files at its first use.
   */
  readonly keyCounts: PortalKeyIndex;

  constructor(private readonly opts: IssuerOptions) {
    this.compile = opts.compile ?? compileConfig;
    this.now = opts.now ?? (() => new Date());
    this.queue = opts.queue ?? new SerialQueue();
    this.keyCounts = opts.keyIndex ?? new PortalKeyIndex(opts.configDir);
  }

  /** Issues in the queue; `deadline`: given up (the promise rejects with its reason) if it passes before the request's turn. */
  issue(input: IssueInput, deadline?: AbortSignal): Promise<IssueOutcome> {
    return this.queue.run(() => this.issueNow(input), deadline);
  }

  private async issueNow(input: IssueInput): Promise<IssueOutcome> {
    const { configDir, bundlePath } = this.opts;
    const before = await this.compile(configDir);
    if (before.apis === null) {
      return {
        ok: false,
        status: 503,
        errors: [
          {
            field: null,
            message: 'The gateway configuration does not compile, so no key can be added until the platform team fixes it.',
            details: before.report,
          },
        ],
      };
    }
    const entry = loadCatalog({ plans: before.plans, apis: before.apis }).find((e) => e.policy === input.policy);
    const cert = validateCertificate(input.certificate, before.certificate, this.now());
    const errors: FormError[] = [...(input.fieldErrors ?? [])];
    if (!entry)
      errors.push({
        field: 'policy',
        message: input.policy === '' ? 'Choose a plan from the catalog.' : 'That plan is no longer offered; choose one from the catalog.',
      });
    if (!cert.ok) errors.push({ field: 'certificate', message: cert.message });
    else {
      const problem = checkProof(cert.pem, input.proof.challenge, input.proof.signature);
      if (problem !== null) errors.push({ field: 'signature', message: proofMessage(problem) });
    }
    if (!entry || !cert.ok || errors.length > 0) return { ok: false, status: 422, errors, certProblem: cert.ok ? undefined : cert.problem };
    if (!input.consumeChallenge(input.proof.challenge)) {
      return {
        ok: false,
        status: 422,
        errors: [{ field: 'signature', message: 'This challenge expired or was already used. Sign the new challenge shown on this page and submit again.' }],
      };
    }

    // From here on the directory changes: hold its lock against `mtlsgate approve` in another process.
    return withDirLock(configDir, async (): Promise<IssueOutcome> => {
      // Counted and written under the lock: the last place goes to one request only.
      const { owner } = input;
      const overLimit =
        owner === undefined || (this.opts.developerKeyLimit ?? null) === null
          ? null
          : keyLimitProblem(await this.keyCounts.count(owner), this.opts.developerKeyLimit ?? null);
      if (overLimit !== null) return { ok: false, status: 403, errors: [{ field: null, code: 'key_limit', message: overLimit }] };
      let keyId = newKeyId();
      while (before.hasKey(keyId) || existsSync(keyFilePath(configDir, keyId))) keyId = newKeyId();
      const file = keyFilePath(configDir, keyId);
      const receipt = newReceipt(keyId);
      await writeFileAtomic(
        file,
        Buffer.from(
          renderKeyFile({
            keyId,
            owner: input.owner,
            receiptSha256: input.owner === undefined ? receipt.sha256 : undefined,
            policy: entry.policy,
            entryName: entry.name,
            developer: input.developer,
            certificatePem: cert.pem,
            requireApproval: entry.requireApproval,
            requestedAt: this.now(),
          }),
        ),
      );
      this.keyCounts.written(keyId);
      const after = await this.compile(configDir).catch((err: Error) => ({ bundle: null, report: err.message }));
      if (after.bundle === null) {
        this.removeNew(keyId);
        return {
          ok: false,
          status: 409,
          errors: [
            { field: null, message: 'The configuration did not compile with your key added, so it was not added. Nothing was changed.', details: after.report },
          ],
        };
      }
      try {
        await writeBundle(bundlePath, after);
      } catch (err) {
        this.removeNew(keyId);
        return {
          ok: false,
          status: 503,
          errors: [
            {
              field: null,
              message: `The bundle could not be written (${errnoMessage(err)}), so your key was not added. Try again later.`,
            },
          ],
        };
      }
      return { ok: true, keyId, fingerprint: cert.fingerprint, pending: entry.requireApproval, entry, receipt: receipt.receipt };
    });
  }

  /** Takes back a key file this issuer just wrote (its compile or bundle write failed). */
  private removeNew(keyId: string): void {
    rmSync(keyFilePath(this.opts.configDir, keyId), { force: true });
    this.keyCounts.removed(keyId);
  }
}

/**
 * The bundle file at `path`, or null when there is none yet: a regular file of at most
 * MAX_BUNDLE_BYTES. A named pipe there throws at once (NotARegularFileError: the start-up
 * reports it, naming the path) instead of holding the portal's event loop.
 */
function readBundleIfAny(path: string): Buffer | null {
  try {
    return readRegularFile(path, MAX_BUNDLE_BYTES);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/**
 * Compiles the directory and writes the bundle when its bytes differ from the file's, so
 * the portal starts from a bundle that matches the directory without a needless reload.
 * Returns the compile result.
 */
export async function syncBundle(configDir: string, bundlePath: string, compile: CompileFn = compileConfig) {
  const compiled = await compile(configDir);
  // A sharded directory: writeBundle writes only shards that differ (and the manifest).
  if (compiled.bundle !== null && isShardedDir(bundlePath)) await writeBundle(bundlePath, compiled);
  else if (compiled.bundle !== null) {
    const current = readBundleIfAny(bundlePath);
    if (current === null || !current.equals(compiled.bundle)) await writeBundle(bundlePath, compiled);
  }
  return compiled;
}
