// The portal's start-up compile (`syncBundle`: the directory compiled, the bundle rewritten when
// its bytes differ) runs after the portal listens, as the first task of the queue every change
// goes through. At 20,000 key files it takes seconds (in a worker thread: the event loop stays
// free, compiler/full-compile-client.ts); meanwhile the sign-in, sign-out and static pages
// answer, and every page or form that needs the catalog or the keys answers 503 "starting"
// (HTML that reloads itself, or JSON), never a catalog or key list of its own making. A key
// request made meanwhile is refused before anything is read or written (its challenge stays
// usable), so none is lost in, or half-applied beside, the start-up compile.
import type { Compiled } from './compile.ts';
import { html } from './html.ts';
import type { Exchange } from './http.ts';
import { layout, messagePage } from './page.ts';
import type { SerialQueue } from './queue.ts';

/** How long a browser waits before it asks again while the portal starts. */
const STARTING_RETRY_SECONDS = 2;

/** The pages and forms that read the catalog or the keys: everything but sign-in, sign-out and the static files. */
export const NEEDS_COMPILE = /^\/(?:$|requests(?:\/|$)|keys(?:\/|$)|admin(?:\/|$))/;

export class StartupCompile {
  private running = false;
  /** Config files the compile read (null until they are read). */
  private files: number | null = null;

  /** Called with the count of config files once the compile has read them (CompileOptions.onLoaded). */
  readonly loaded = (files: number): void => {
    if (this.running) this.files = files;
  };

  /** Runs `sync` as the first task of `queue`: every key change waits for it, and starts from its state. */
  run(queue: SerialQueue, sync: () => Promise<Compiled>): Promise<Compiled> {
    this.running = true;
    return queue.run(sync).finally(() => {
      this.running = false;
    });
  }

  /** What a page says while the compile runs; null once it is done. */
  get message(): string | null {
    if (!this.running) return null;
    return `starting: compiling the config (${this.files === null ? 'reading its files' : `${this.files.toLocaleString('en-US')} files`})`;
  }
}

/** Answers 503 "starting" (HTML or JSON) while the start-up compile runs; false once it is done. */
export function answeredStarting(startup: StartupCompile | undefined, ex: Exchange): boolean {
  const message = startup?.message;
  if (message === undefined || message === null) return false;
  const retry = { 'retry-after': String(STARTING_RETRY_SECONDS) };
  const text = `${message}. The portal has just started; try again in a few seconds.`;
  if (ex.wantsJson()) {
    ex.json(503, { errors: [{ field: null, code: 'starting', message: text }] }, retry);
    return true;
  }
  if (!ex.readOnly) {
    // A form sent meanwhile: nothing was read or written; the same form can be sent again.
    ex.html(503, messagePage('Starting', `${text} Nothing was submitted: send the form again once the portal answers.`, ex.chrome()), retry);
    return true;
  }
  const body = html`<h1>Starting</h1>
<section class="card" aria-live="polite"><p id="starting">${text} This page shows once it is done; it reloads on its own.</p>
<p><a class="button button-secondary" href="${ex.url.pathname + ex.url.search}">Reload</a></p></section>`;
  ex.html(503, layout('Starting', null, body, ex.chrome(), STARTING_RETRY_SECONDS), retry);
  return true;
}
