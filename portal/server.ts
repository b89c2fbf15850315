// The portal's HTTP server (node:http, server-rendered, no script). Two modes:
// - loopback-only (no OIDC options): the catalog and request form; a key's status page is
//   reached with the secret receipt handed out with it. Every page says it has no sign-in.
// - signed-in (OpenID Connect): every page but sign-in needs a session; a developer requests
//   keys they own and manages only those; admins approve or deny pending keys.
// Every answer carries a strict CSP and the other protective headers; every form is
// CSRF-protected; every certificate needs proof of possession of its private key.
import { type IncomingMessage, type RequestListener, Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { CompileStopped } from '../compiler/full-compile-client.ts';
import { type Compiled, compileConfig, type CompileFn } from './compile.ts';
import type { PortalContext } from './context.ts';
import { CsrfGuard } from './csrf.ts';
import { Exchange, SECURITY_HEADERS } from './http.ts';
import { Issuer } from './issue-key.ts';
import type { PortalKeyIndex } from './key-index.ts';
import { DEFAULT_DEVELOPER_KEY_LIMIT } from './key-limit.ts';
import { OidcSignIn, type OidcOptions } from './oidc.ts';
import { signInPage } from './page-keys.ts';
import { messagePage } from './page.ts';
import { ChallengeStore } from './proof.ts';
import { SerialQueue } from './queue.ts';
import { DEFAULT_SUBMISSION_LIMIT, SubmissionLimiter, type SubmissionLimit } from './rate-limit.ts';
import { syncBundle } from './issue-key.ts';
import { adminAction, showAdmin } from './routes-admin.ts';
import { callback, login, logout } from './routes-auth.ts';
import { keyAction, myKeys, receiptStatus, showKey } from './routes-keys.ts';
import { EMPTY_VALUES, renderForm, submitRequest } from './routes-request.ts';
import { SESSION_TTL_MS, SessionStore } from './session.ts';
import { answeredStarting, NEEDS_COMPILE, type StartupCompile } from './startup.ts';
import { STYLE_CSS } from './style.ts';

export { SECURITY_HEADERS };

export interface PortalOptions {
  configDir: string;
  bundlePath: string;
  /** Base URL of the gateway, for the curl commands shown to developers. */
  gatewayUrl: string;
  compile?: CompileFn;
  logger?: Logger;
  /** Sign-in with OpenID Connect; without it the portal is loopback-only. */
  oidc?: OidcOptions;
  /** The portal's base URL as browsers reach it; https makes cookies Secure. Default: the listening address. */
  publicUrl?: string;
  submissionLimit?: SubmissionLimit;
  /** Keys one signed-in developer may hold (portal/key-limit.ts); null: no cap. Default DEFAULT_DEVELOPER_KEY_LIMIT. */
  developerKeyLimit?: number | null;
  sessionTtlMs?: number;
  /** The index of DIR/keys/portal the pages and the cap read (portal/key-index.ts); default: one on `configDir`. */
  keyIndex?: PortalKeyIndex;
  /**
   * The start-up compile (portal/startup.ts): given, the portal compiles `configDir` into
   * `bundlePath` (syncBundle) as the first task of its queue, and the pages that need the
   * catalog or the keys answer 503 "starting" until it is done. Without it the caller has
   * compiled before (the tests).
   */
  startup?: StartupCompile;
}

export interface Portal {
  server: Server;
  issuer: Issuer;
  /** The start-up compile's result (rejects as syncBundle does); null without `startup`. */
  started: Promise<Compiled> | null;
}

export function createPortal(opts: PortalOptions): Portal {
  const compile = opts.compile ?? compileConfig;
  const queue = new SerialQueue();
  const secure = opts.publicUrl !== undefined && new URL(opts.publicUrl).protocol === 'https:';
  let server: Server;
  const issuer = new Issuer({
    configDir: opts.configDir,
    bundlePath: opts.bundlePath,
    compile,
    queue,
    keyIndex: opts.keyIndex,
    // Only signed-in keys have an owner to count: a loopback-only portal reads no key files for it.
    developerKeyLimit: opts.oidc === undefined ? null : opts.developerKeyLimit === undefined ? DEFAULT_DEVELOPER_KEY_LIMIT : opts.developerKeyLimit,
  });
  // The "My keys" and admin pages (sign-in only) read the key index: every file is read now, in
  // the background, while the portal already answers (those pages say "loading" until it is done).
  if (opts.oidc !== undefined) {
    const loadStarted = performance.now();
    issuer.keyCounts.load().then(
      // From here "My keys" and the admin page answer (during the start-up compile too, once the catalog is compiled).
      () => opts.logger?.info({ ms: Math.round(performance.now() - loadStarted) }, 'portal: every key file is read'),
      (err: Error) => opts.logger?.error({ error: err.message }, 'portal: reading the key files failed; the next view tries again'),
    );
  }
  const started = opts.startup ? opts.startup.run(queue, () => syncBundle(opts.configDir, opts.bundlePath, compile), opts.configDir, compile) : null;
  started?.catch((err: Error) => opts.logger?.error({ error: err.message }, 'portal: the start-up compile failed'));
  const ctx: PortalContext = {
    configDir: opts.configDir,
    bundlePath: opts.bundlePath,
    gatewayUrl: opts.gatewayUrl,
    compile,
    queue,
    startup: opts.startup,
    issuer,
    edits: { configDir: opts.configDir, bundlePath: opts.bundlePath, compile, keyCounts: issuer.keyCounts },
    csrf: new CsrfGuard(secure),
    challenges: new ChallengeStore(),
    limiter: new SubmissionLimiter(opts.submissionLimit ?? DEFAULT_SUBMISSION_LIMIT),
    sessions: opts.oidc ? new SessionStore(secure, opts.sessionTtlMs ?? SESSION_TTL_MS) : null,
    oidc: opts.oidc ? new OidcSignIn(opts.oidc, secure) : null,
    publicUrl: () => {
      if (opts.publicUrl !== undefined) return opts.publicUrl;
      const a = server.address() as AddressInfo;
      return `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
    },
    logger: opts.logger,
    now: () => new Date(),
  };

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://portal.invalid');
    const session = ctx.sessions?.get(req) ?? null;
    const ex = new Exchange(req, res, url, ctx.csrf, session, ctx.oidc !== null);
    const path = url.pathname;
    const method = ex.method;
    const notAllowed = (allow: string) => ex.html(405, messagePage('Method not allowed', `This page answers ${allow} only.`, ex.chrome()), { allow });
    const get = (handler: () => Promise<void> | void) => (ex.readOnly ? handler() : notAllowed('GET'));
    const post = (handler: () => Promise<void> | void) => (method === 'POST' ? handler() : notAllowed('POST'));

    if (path === '/style.css') return get(() => ex.send(200, 'text/css; charset=utf-8', STYLE_CSS, { 'cache-control': 'no-cache' }));
    if (path === '/favicon.ico') {
      res.writeHead(204, SECURITY_HEADERS);
      res.end();
      return;
    }
    if (ctx.oidc !== null) {
      if (path === '/auth/login') return get(() => login(ctx, ex));
      if (path === '/auth/callback') return get(() => callback(ctx, ex));
      if (path === '/auth/logout') return post(() => logout(ctx, ex));
      if (path === '/signed-out') return get(() => ex.html(200, signInPage(ex.chrome(), '/', 'You are signed out.')));
      if (session === null) {
        if (!ex.readOnly)
          return ex.wantsJson()
            ? ex.json(401, { errors: [{ field: null, message: 'Sign in first.' }] })
            : ex.html(401, signInPage(ex.chrome(), '/', 'Sign in first.'));
        return ex.html(401, signInPage(ex.chrome(), path + url.search, null));
      }
    }
    if (NEEDS_COMPILE.test(path) && answeredStarting(opts.startup, ex)) return;
    if (path === '/') return get(() => renderForm(ctx, ex, { status: 200, values: EMPTY_VALUES, errors: [] }));
    if (path === '/requests') {
      if (method === 'POST') return submitRequest(ctx, ex);
      if (!ex.readOnly) return notAllowed('GET, POST');
      return session ? ex.redirect('/keys') : receiptStatus(ctx, ex, null);
    }
    const request = /^\/requests\/([^/]+)$/.exec(path);
    if (request) return get(() => (session ? ex.redirect(`/keys/${encodeURIComponent(request[1]!)}`) : receiptStatus(ctx, ex, request[1]!)));
    if (session !== null) {
      if (path === '/keys') return get(() => myKeys(ctx, ex));
      const key = /^\/keys\/([^/]+)$/.exec(path);
      if (key) return get(() => showKey(ctx, ex, key[1]!));
      const action = /^\/keys\/([^/]+)\/(switch-off|renew|remove-certificate)$/.exec(path);
      if (action) return post(() => keyAction(ctx, ex, action[1]!, action[2]!));
      if (path === '/admin') return get(() => showAdmin(ctx, ex));
      const admin = /^\/admin\/keys\/([^/]+)\/(approve|deny)$/.exec(path);
      if (admin) return post(() => adminAction(ctx, ex, admin[1]!, admin[2]!));
    }
    ex.html(404, messagePage('Page not found', 'There is nothing at this address.', ex.chrome()));
  }

  const handle: RequestListener = (req, res) => {
    route(req, res).catch((err: Error) => {
      // A request that waited for a compile the portal's stop ended: nothing was written.
      if (err instanceof CompileStopped && !res.headersSent) return answerStopping(req, res);
      opts.logger?.error({ error: err.message }, 'portal request failed');
      if (!res.headersSent)
        res
          .writeHead(500, { ...SECURITY_HEADERS, 'content-type': 'text/plain; charset=utf-8' })
          .end('The portal could not answer this request. Nothing was changed; try again.\n');
      else res.destroy();
    });
  };
  server = new PortalServer(handle, () => compile.close?.());
  return { server, issuer: ctx.issuer, started };
}

/** 503 to a request the portal's stop cut short (it waited for the start-up compile): JSON for API clients. */
function answerStopping(req: IncomingMessage, res: ServerResponse): void {
  const message = 'The portal is stopping: nothing was submitted or changed. Send it again once the portal is back.';
  if (/\bapplication\/json\b/.test(req.headers.accept ?? ''))
    res
      .writeHead(503, { ...SECURITY_HEADERS, 'content-type': 'application/json; charset=utf-8' })
      .end(JSON.stringify({ errors: [{ field: null, code: 'stopping', message }] }));
  else res.writeHead(503, { ...SECURITY_HEADERS, 'content-type': 'text/plain; charset=utf-8' }).end(`${message}\n`);
}

/** The portal's HTTP server: closing it (the portal stopping) also ends its compile worker at once, a compile in flight with it. */
class PortalServer extends Server {
  constructor(
    handle: RequestListener,
    private readonly stopCompiles: () => void,
  ) {
    super(handle);
  }

  override close(callback?: (err?: Error) => void): this {
    this.stopCompiles();
    return super.close(callback);
  }
}
