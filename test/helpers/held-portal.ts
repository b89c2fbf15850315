// A portal whose start-up compile (portal/startup.ts) runs in its worker thread and is held there
// once the files are read (Atomics.wait on a shared flag the test lets go): "while the compile
// runs" is a state the test controls, not a race. Shared by test/portal-startup*.test.ts.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DemoPki } from '../../cli/pki.ts';
import { closeServer, listen } from '../../common/listen.ts';
import type { LiveMode } from '../../compiler/live-compile.ts';
import { type CompileFn, compilerFor } from '../../portal/compile.ts';
import type { SubmissionLimit } from '../../portal/rate-limit.ts';
import type { OidcOptions } from '../../portal/oidc.ts';
import { createPortal, type Portal } from '../../portal/server.ts';
import { StartupCompile } from '../../portal/startup.ts';
import { tempDir, waitFor } from './ops-fixtures.ts';
import { writePortalConfig } from './portal-fixtures.ts';
import { demoPki } from './serve-fixtures.ts';

export interface HeldPortal {
  pki: DemoPki;
  dir: string;
  config: string;
  bundle: string;
  portal: Portal;
  base: string;
  startup: StartupCompile;
  /** How each compile of the portal was made (full, incremental, unchanged). */
  modes: (LiveMode | undefined)[];
  /** Lets the held worker go on. */
  release(): void;
  /** Stops the portal and removes its directory. */
  close(): Promise<void>;
}

/** Adds an API without a proxy (an error) to the config. */
export function breakConfig(config: string): void {
  writeFileSync(join(config, 'apis', 'apis.yaml'), `${readFileSync(join(config, 'apis', 'apis.yaml'), 'utf8')}---\nkind: api\nid: broken\n`);
}

/** A temporary config directory (writePortalConfig, `broken`: plus an API without a proxy) and bundle path. */
export async function portalDir(name: string, broken = false) {
  const t = tempDir(name);
  const pki = await demoPki(t.dir);
  const config = writePortalConfig(t.dir, 'http://127.0.0.1:9', pki);
  if (broken) breakConfig(config);
  return { t, pki, config, bundle: join(t.dir, 'bundle.json') };
}

/** A portal whose start-up compile is held in its worker once the files are read. */
export async function heldPortal(
  name: string,
  opts: {
    /** true: sign-in at a provider that is never asked; an object: the portal's `oidc` option (a real provider). */
    oidc?: boolean | OidcOptions;
    broken?: boolean;
    submissionLimit?: SubmissionLimit;
    /** How long a key request may wait for the compile (StartupCompile's `waitMs`). */
    waitMs?: number;
    /** Called with the config directory before the portal starts (more files to compile). */
    prepare?: (config: string, pki: DemoPki) => Promise<void> | void;
  } = {},
): Promise<HeldPortal> {
  const { t, pki, config, bundle: bundlePath } = await portalDir(name, opts.broken);
  await opts.prepare?.(config, pki);
  const hold = new Int32Array(new SharedArrayBuffer(4));
  const startup = new StartupCompile(opts.waitMs);
  const live = compilerFor({ live: true, offThread: { hold }, onLoaded: startup.loaded });
  const modes: (LiveMode | undefined)[] = [];
  const compile: CompileFn = async (dir) => {
    const compiled = await live(dir);
    modes.push(compiled.live);
    return compiled;
  };
  // The early catalog and the stop are the compiler's own.
  compile.earlyCatalog = live.earlyCatalog;
  compile.close = live.close;
  compile.release = live.release;
  const portal = createPortal({
    configDir: config,
    bundlePath,
    gatewayUrl: 'https://gw.example.test:8443',
    compile,
    startup,
    ...(opts.submissionLimit ? { submissionLimit: opts.submissionLimit } : {}),
    ...(opts.oidc === true
      ? { oidc: { issuer: 'http://127.0.0.1:9/', clientId: 'portal', clientSecret: 'secret', admins: [] } }
      : opts.oidc
        ? { oidc: opts.oidc }
        : {}),
  });
  const base = `http://127.0.0.1:${(await listen(portal.server, 0, '127.0.0.1')).port}`;
  const release = () => {
    Atomics.store(hold, 0, 1);
    Atomics.notify(hold, 0);
  };
  // The worker has read the files (3: the APIs, the plans, alice's key; more with `prepare`) and waits.
  await waitFor('the start-up compile to read the files', () => /\(\d[\d,]* files\)/.test(startup.message ?? ''), 60_000);
  return {
    pki,
    dir: t.dir,
    config,
    bundle: bundlePath,
    portal,
    base,
    startup,
    modes,
    release,
    close: async () => {
      release();
      await portal.started?.catch(() => undefined);
      await closeServer(portal.server);
      t.cleanup();
    },
  };
}
