// What every route of the portal shares: its options, the compiler, the queue every change
// goes through, the issuer, CSRF, challenges, the submission limiter, sessions and sign-in.
import type { Logger } from 'pino';
import { loadCatalog, type CatalogEntry } from './catalog.ts';
import type { CompileFn } from './compile.ts';
import type { CsrfGuard } from './csrf.ts';
import type { EditTarget } from './edit-key.ts';
import type { Issuer } from './issue-key.ts';
import type { OidcSignIn } from './oidc.ts';
import type { ChallengeStore } from './proof.ts';
import type { SerialQueue } from './queue.ts';
import type { SubmissionLimiter } from './rate-limit.ts';
import type { SessionStore } from './session.ts';
import type { StartupCompile } from './startup.ts';

export interface PortalContext {
  configDir: string;
  bundlePath: string;
  gatewayUrl: string;
  compile: CompileFn;
  /** Every change to the config directory, issuing or editing, runs through this one queue. */
  queue: SerialQueue;
  /** The start-up compile, while it runs (portal/startup.ts); undefined when the caller compiled before. */
  startup?: StartupCompile;
  issuer: Issuer;
  edits: EditTarget;
  csrf: CsrfGuard;
  challenges: ChallengeStore;
  limiter: SubmissionLimiter;
  /** Both null on a loopback-only portal. */
  sessions: SessionStore | null;
  oidc: OidcSignIn | null;
  /** The portal's base URL as browsers reach it (for the sign-in callback). */
  publicUrl(): string;
  logger?: Logger;
  now(): Date;
}

export async function catalogNow(ctx: PortalContext): Promise<{ catalog: CatalogEntry[]; broken?: string; starting?: string }> {
  // While the start-up compile runs: the catalog of the policies and APIs alone, compiled before it.
  const early = ctx.startup?.catalog;
  if (early) return { catalog: early, starting: ctx.startup!.formNotice };
  const compiled = await ctx.compile(ctx.configDir);
  if (compiled.apis === null) return { catalog: [], broken: compiled.report };
  return { catalog: loadCatalog({ plans: compiled.plans, apis: compiled.apis }) };
}
