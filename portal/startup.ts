// The portal's start-up compile (`syncBundle`: the directory compiled, the bundle rewritten when
// its bytes differ) runs after the portal listens, as the first task of the queue every change
// goes through. At 20,000 key files it takes seconds (in a worker thread: the event loop stays
// free, compiler/full-compile-client.ts). Before it the worker compiles the catalog alone (the
// config without DIR/keys/portal: the policies and APIs, a few files), so the request form shows
// the catalog within a second of the start. Meanwhile:
// - the request form answers from that catalog (or 503 "starting" when the catalog alone does not
//   compile: the full compile then shows why);
// - a key request waits in the queue behind the compile and is answered when it is done, exactly
//   as after the start: validated against the whole config (its certificate against every key's),
//   never against a part of it. At most MAX_WAITING_REQUESTS wait at once (each holds its body);
//   one more is refused (503 "starting") before anything is read or written. Each waits at most
//   START_WAIT_DEADLINE_MS: then it is answered 503 "starting" (Retry-After) and never runs;
// - the pages that show keys (signed in: My keys, a key, the admin page; loopback-only: a key's
//   status by its receipt) answer from the key files, the bundle the gateway reads and that
//   catalog; until the catalog is compiled they, and every other page that needs it, answer 503
//   "starting" (HTML that reloads itself, or JSON), never a key list of its own making.
// A portal stopped meanwhile ends the compile (CompileStopped): `started` then never settles.
import { CompileStopped } from '../compiler/full-compile-client.ts';
import { type CatalogEntry, loadCatalog } from './catalog.ts';
import type { CompileFn, Compiled } from './compile.ts';
import { html } from './html.ts';
import type { Exchange } from './http.ts';
import { layout, messagePage } from './page.ts';
import type { SerialQueue } from './queue.ts';

/** How long a browser waits before it asks again while the portal starts. */
const STARTING_RETRY_SECONDS = 2;

/** Key requests that may wait for the start-up compile at once (each holds its body, at most form.ts MAX_BODY_BYTES). */
export const MAX_WAITING_REQUESTS = 32;

/**
 * How long a key request waits for the start-up compile: past it, it is answered 503 "starting"
 * (Retry-After) and never runs. Well under the time browsers and proxies give an answer (a
 * proxy's 60 s would end it with a 504 that says nothing), and beyond the start-up compile of
 * 20,000 key files on a busy 2-core machine (5-12 s, docs/portal.md).
 */
export const START_WAIT_DEADLINE_MS = 30_000;
/** The longest `--startup-wait`: an hour (a request held longer has long been given up by any client). */
export const MAX_START_WAIT_MS = 3_600_000;

/** A waiting key request's deadline passed before the start-up compile was done: nothing was read further or written. */
export class StartupWaitExpired extends Error {
  constructor(readonly waitedMs: number) {
    super(`the start-up compile was not done after ${waitedMs / 1000} s`);
    this.name = 'StartupWaitExpired';
  }
}

/** The pages and forms that read the catalog or the keys: everything but sign-in, sign-out and the static files. */
export const NEEDS_COMPILE = /^\/(?:$|requests(?:\/|$)|keys(?:\/|$)|admin(?:\/|$))/;

export class StartupCompile {
  private running = false;
  /** Config files the compile read (null until they are read). */
  private files: number | null = null;
  /** The catalog of the policies and APIs alone, while the start-up compile runs (null: not compiled, or it has errors). */
  private early: CatalogEntry[] | null = null;
  /** Key requests waiting for the start-up compile. */
  private waiting = 0;

  /** `waitMs`: how long a key request may wait for the compile (START_WAIT_DEADLINE_MS; tests shorten it). */
  constructor(private readonly waitMs = START_WAIT_DEADLINE_MS) {}

  /** Called with the count of config files once the compile has read them (CompileOptions.onLoaded). */
  readonly loaded = (files: number): void => {
    if (this.running) this.files = files;
  };

  /**
   * Runs `sync` as the first task of `queue`: every key change waits for it, and starts from its
   * state. With `compile.earlyCatalog` the catalog is compiled first (the same worker, before the
   * full compile), for the request form meanwhile.
   */
  run(queue: SerialQueue, sync: () => Promise<Compiled>, configDir?: string, compile?: CompileFn): Promise<Compiled> {
    this.running = true;
    if (configDir !== undefined && compile?.earlyCatalog)
      compile.earlyCatalog(configDir).then(
        (parts) => {
          if (this.running && parts !== null) this.early = loadCatalog(parts);
        },
        () => undefined,
      );
    const done = queue.run(sync).finally(() => {
      this.running = false;
      this.early = null;
      // Kept in memory now (the live compile): nothing needs the worker until a full compile.
      compile?.release?.();
    });
    // Stopped with the portal: nobody waits for it; nothing reports it.
    return done.catch((err: unknown) => (err instanceof CompileStopped ? new Promise<never>(() => undefined) : Promise.reject(err)));
  }

  /** What a page says while the compile runs; null once it is done. */
  get message(): string | null {
    if (!this.running) return null;
    return `starting: compiling the config (${this.files === null ? 'reading its files' : `${this.files.toLocaleString('en-US')} files`})`;
  }

  /** The catalog to show while the compile runs (null: none yet, or the compile is done). */
  get catalog(): CatalogEntry[] | null {
    return this.running ? this.early : null;
  }

  /** What the request form says while it shows the early catalog. */
  get formNotice(): string {
    const files = this.files === null ? 'its files' : `its ${this.files.toLocaleString('en-US')} files`;
    return `The portal has just started and is still compiling ${files}. A request sent now is answered once that is done (a few seconds).`;
  }

  /** What a signed-in key page (My keys, a key, the admin page) says while the compile runs; null once it is done. */
  get actionsNotice(): string | null {
    if (!this.running) return null;
    const files = this.files === null ? 'its files' : `its ${this.files.toLocaleString('en-US')} files`;
    return `The portal has just started and is still compiling ${files}: the keys below are read from their files, and the buttons on this page answer once the compile is done (a few seconds).`;
  }

  /** Key requests waiting for the start-up compile now (tests). */
  get waitingRequests(): number {
    return this.waiting;
  }

  /**
   * Whether a key request sent now may wait in the queue for the compile (it counts until its
   * answer is sent). An admitted one gets its deadline (`ex.waitDeadline`): it aborts with
   * StartupWaitExpired after `waitMs`, and the request is then answered answerWaitExpired.
   */
  admit(ex: Exchange): boolean {
    if (this.waiting >= MAX_WAITING_REQUESTS) return false;
    this.waiting++;
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(new StartupWaitExpired(this.waitMs)), this.waitMs).unref();
    ex.waitDeadline = deadline.signal;
    ex.res.once('close', () => {
      this.waiting--;
      clearTimeout(timer);
    });
    return true;
  }
}

/**
 * The signed-in pages that read the portal's key files (portal/key-index.ts, one file for a
 * key's page), the bundle the gateway reads and the catalog, never the compiled keys.
 */
const SIGNED_IN_KEY_PAGES = /^\/(?:keys(?:\/[^/]+)?|admin)$/;

/**
 * A loopback-only portal's status page (a key by its receipt) and the form that asks for one:
 * the key's one file, the bundle the gateway reads and the catalog, as the signed-in key pages.
 */
const RECEIPT_PAGES = /^\/requests(?:\/[^/]+)?$/;

/**
 * What the early catalog answers while the compile runs: the request form, the signed-in key
 * pages (their forms wait for the compile: 503 "starting"), and a key request (it waits for the
 * compile).
 */
function answeredMeanwhile(startup: StartupCompile, ex: Exchange): boolean {
  const path = ex.url.pathname;
  if (path === '/' && ex.readOnly) return startup.catalog !== null;
  if (ex.readOnly && ex.session !== null && SIGNED_IN_KEY_PAGES.test(path)) return startup.catalog !== null;
  if (ex.readOnly && !ex.oidc && RECEIPT_PAGES.test(path)) return startup.catalog !== null;
  if (path === '/requests' && ex.method === 'POST') return startup.admit(ex);
  return false;
}

/** Answers 503 "starting" (HTML or JSON) while the start-up compile runs, unless the page can answer meanwhile; false when it can. */
export function answeredStarting(startup: StartupCompile | undefined, ex: Exchange): boolean {
  const message = startup?.message;
  if (message === undefined || message === null || answeredMeanwhile(startup!, ex)) return false;
  const busy = ex.method === 'POST' && ex.url.pathname === '/requests' ? ` ${MAX_WAITING_REQUESTS} key requests already wait for it.` : '';
  const text = `${message}. The portal has just started; try again in a few seconds.${busy}`;
  if (ex.wantsJson() || !ex.readOnly) {
    answerNotSubmitted(ex, text);
    return true;
  }
  const retry = { 'retry-after': String(STARTING_RETRY_SECONDS) };
  const body = html`<h1>Starting</h1>
<section class="card" aria-live="polite"><p id="starting">${text} This page shows once it is done; it reloads on its own.</p>
<p><a class="button button-secondary" href="${ex.url.pathname + ex.url.search}">Reload</a></p></section>`;
  ex.html(503, layout('Starting', null, body, ex.chrome(), STARTING_RETRY_SECONDS), retry);
  return true;
}

/** A form or API call refused while the portal starts: 503 "starting" with Retry-After; nothing was read or written, the same form can be sent again. */
function answerNotSubmitted(ex: Exchange, text: string): void {
  const retry = { 'retry-after': String(STARTING_RETRY_SECONDS) };
  if (ex.wantsJson()) ex.json(503, { errors: [{ field: null, code: 'starting', message: text }] }, retry);
  else ex.html(503, messagePage('Starting', `${text} Nothing was submitted: send the form again once the portal answers.`, ex.chrome()), retry);
}

/** A key request whose deadline passed while it waited for the start-up compile (StartupWaitExpired). */
export function answerWaitExpired(startup: StartupCompile | undefined, ex: Exchange, err: StartupWaitExpired): void {
  const still = startup?.message ?? 'starting: compiling the config';
  answerNotSubmitted(ex, `${still}: not done after ${err.waitedMs / 1000} s of waiting, so this request was not processed. Send it again in a few seconds.`);
}
