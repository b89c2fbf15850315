// The portal's HTTP server (node:http, server-rendered, no script): the catalog and request
// form, submissions, a status page per key and a developer's list of requests. Every answer
// carries a strict CSP and the other protective headers; the form is CSRF-protected.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { loadBundle } from '../bundle/read.ts';
import type { BundleContent } from '../bundle/types.ts';
import { apiUrl, loadCatalog, type CatalogEntry } from './catalog.ts';
import { compileConfig, type CompileFn } from './compile.ts';
import { CsrfGuard, isCrossSite } from './csrf.ts';
import { BodyTooLarge, developerProblem, MAX_BODY_BYTES, parseRequestForm, readCappedBody, UnsupportedForm, type RequestForm } from './form.ts';
import { Issuer, type IssueOutcome } from './issue-key.ts';
import { listPortalKeys, PORTAL_KEY_ID, readPortalKey, type PortalKey } from './key-file.ts';
import { messagePage, myRequestsPage, requestPage, statusPage, type FormError, type FormValues, type KeyView } from './page.ts';
import { STYLE_CSS } from './style.ts';
import { containsPrivateKey, MAX_CERT_BYTES } from './validate-cert.ts';

export interface PortalOptions {
  configDir: string;
  bundlePath: string;
  /** Base URL of the gateway, for the curl commands shown to developers. */
  gatewayUrl: string;
  compile?: CompileFn;
  logger?: Logger;
}

export const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  // same-origin, not no-referrer: with no-referrer, browsers send `Origin: null` on form posts.
  'referrer-policy': 'same-origin',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'cache-control': 'no-store',
};

export interface Portal {
  server: Server;
  issuer: Issuer;
}

const EMPTY_VALUES: FormValues = { policy: '', developer: '', certificate: '' };

export function createPortal(opts: PortalOptions): Portal {
  const compile = opts.compile ?? compileConfig;
  const issuer = new Issuer({ configDir: opts.configDir, bundlePath: opts.bundlePath, compile });
  const csrf = new CsrfGuard();

  function send(res: ServerResponse, status: number, type: string, body: string, extra: Record<string, string> = {}): void {
    res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': type, 'content-length': String(Buffer.byteLength(body)), ...extra });
    res.end(body);
  }
  const sendHtml = (res: ServerResponse, status: number, body: string, extra: Record<string, string> = {}) =>
    send(res, status, 'text/html; charset=utf-8', body, extra);
  const sendJson = (res: ServerResponse, status: number, value: unknown) => send(res, status, 'application/json', JSON.stringify(value) + '\n');

  /** The CSRF cookie of this browser, set on the response when it has none yet. */
  function csrfToken(req: IncomingMessage, headers: Record<string, string>): string {
    let cookie = csrf.cookieOf(req);
    if (cookie === null) {
      cookie = csrf.newCookieValue();
      headers['set-cookie'] = csrf.setCookieHeader(cookie);
    }
    return csrf.tokenFor(cookie);
  }

  async function catalogNow(): Promise<{ catalog: CatalogEntry[]; broken?: string }> {
    const compiled = await compile(opts.configDir);
    if (compiled.content === null) return { catalog: [], broken: compiled.report };
    return { catalog: loadCatalog(opts.configDir, compiled.content) };
  }

  async function renderForm(
    req: IncomingMessage,
    res: ServerResponse,
    status: number,
    values: FormValues,
    errors: FormError[],
    extra: Record<string, string> = {},
  ): Promise<void> {
    const headers: Record<string, string> = { ...extra };
    const token = csrfToken(req, headers);
    const { catalog, broken } = await catalogNow();
    sendHtml(res, status, requestPage({ catalog, csrfToken: token, values, errors, configBroken: broken }), headers);
  }

  function wantsJson(req: IncomingMessage): boolean {
    return /\bapplication\/json\b/.test(req.headers.accept ?? '');
  }

  async function refuseSubmission(
    req: IncomingMessage,
    res: ServerResponse,
    status: number,
    values: FormValues,
    errors: FormError[],
    extra: Record<string, string> = {},
  ): Promise<void> {
    if (wantsJson(req)) {
      send(
        res,
        status,
        'application/json',
        JSON.stringify({ errors: errors.map(({ field, message, details }) => ({ field, message, details })) }) + '\n',
        extra,
      );
      return;
    }
    await renderForm(req, res, status, values, errors, extra);
  }

  async function submit(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (isCrossSite(req)) {
      await refuseSubmission(req, res, 403, EMPTY_VALUES, [
        { field: null, message: 'This form was sent from another site and was refused. Open the portal and submit it from there.' },
      ]);
      return;
    }
    let form: RequestForm;
    try {
      form = await parseRequestForm(await readCappedBody(req, MAX_BODY_BYTES), req.headers['content-type']);
    } catch (err) {
      if (err instanceof BodyTooLarge) {
        // The rest of the body is never read: answer, then drop the connection.
        res.on('finish', () => req.socket.destroy());
        await refuseSubmission(
          req,
          res,
          413,
          EMPTY_VALUES,
          [
            {
              field: 'certificate',
              message: `The request is larger than ${MAX_BODY_BYTES / 1024} KiB. A client certificate is 1-3 KiB: submit only your own certificate (at most ${MAX_CERT_BYTES / 1024} KiB).`,
            },
          ],
          { connection: 'close' },
        );
        return;
      }
      if (err instanceof UnsupportedForm) {
        await refuseSubmission(req, res, 415, EMPTY_VALUES, [{ field: null, message: `The form could not be read: ${err.message}.` }]);
        return;
      }
      throw err;
    }
    // What goes back into the form on a refusal: never anything that looks like a private key.
    const values: FormValues = {
      policy: form.policy,
      developer: form.developer,
      certificate: containsPrivateKey(form.pasted) || form.pasted.length > MAX_CERT_BYTES ? '' : form.pasted,
    };
    if (!csrf.verify(csrf.cookieOf(req), form.csrf)) {
      await refuseSubmission(req, res, 403, values, [
        { field: null, message: 'Your session expired or this form did not come from the portal. Check your entries and submit again.' },
      ]);
      return;
    }
    const fieldErrors: FormError[] = [];
    const developer = developerProblem(form.developer);
    if (developer) fieldErrors.push({ field: 'developer', message: developer });
    const pastedKey = containsPrivateKey(form.pasted);
    if (form.uploaded !== null && form.pasted.trim() !== '' && !pastedKey) {
      fieldErrors.push({ field: 'certificate', message: 'Either paste the certificate or choose its file, not both.' });
    }
    // A private key in the text area is refused even when a file was chosen too.
    const certificate = pastedKey || form.uploaded === null ? Buffer.from(form.pasted, 'utf8') : form.uploaded;
    const outcome: IssueOutcome = await issuer.issue({ policy: form.policy, developer: form.developer, certificate, fieldErrors });
    if (!outcome.ok) {
      opts.logger?.info(
        { problems: outcome.errors.map((e) => e.field ?? 'request'), cert_problem: outcome.certProblem ?? null, status: outcome.status },
        'portal request refused',
      );
      await refuseSubmission(req, res, outcome.status, values, outcome.errors);
      return;
    }
    opts.logger?.info({ key: outcome.keyId, policy: outcome.entry.policy, cert_sha256: outcome.fingerprint, pending: outcome.pending }, 'portal key issued');
    if (wantsJson(req)) {
      sendJson(res, 201, {
        key_id: outcome.keyId,
        fingerprint: `sha256:${outcome.fingerprint}`,
        status: outcome.pending ? 'pending_approval' : 'active',
        policy: outcome.entry.policy,
        curl: outcome.entry.apis.map((a) => `curl --cert your-cert.pem --key your-key.pem ${apiUrl(opts.gatewayUrl, a)}`),
      });
      return;
    }
    // Post/redirect/get: reloading the result page does not submit again.
    res.writeHead(303, { ...SECURITY_HEADERS, location: `/requests/${outcome.keyId}?issued=1`, 'content-length': '0' });
    res.end();
  }

  /** Status of portal keys: the file says pending or on; the bundle says whether "on" is live yet. */
  function viewer(): (key: PortalKey) => KeyView {
    let live: BundleContent['keys'] | null = null;
    try {
      live = loadBundle(readFileSync(opts.bundlePath)).content.keys;
    } catch {
      // No readable bundle: the file is all we know.
    }
    return (key) => ({ ...key, status: key.pending ? 'pending' : live === null || live[key.keyId]?.is_inactive === false ? 'active' : 'approved' });
  }

  async function keyStatus(res: ServerResponse, keyId: string, justIssued: boolean): Promise<void> {
    const found = PORTAL_KEY_ID.test(keyId) ? readPortalKey(opts.configDir, keyId) : null;
    if (found === null) {
      sendHtml(res, 404, messagePage('Request not found', 'No portal key has this id. It may have been removed by the platform team.'));
      return;
    }
    const key = viewer()(found);
    const { catalog } = await catalogNow();
    let fingerprint: string | null = null;
    try {
      fingerprint = new X509Certificate(key.certificate).fingerprint256.replaceAll(':', '').toLowerCase();
    } catch {
      // Edited by hand into something unreadable: the page says so.
    }
    const entries = catalog.filter((e) => key.policies.includes(e.policy));
    sendHtml(res, 200, statusPage({ key, fingerprint, entries, gatewayUrl: opts.gatewayUrl, justIssued }));
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://portal.invalid');
    const method = req.method ?? 'GET';
    const readOnly = method === 'GET' || method === 'HEAD';
    const notAllowed = (allow: string) => sendHtml(res, 405, messagePage('Method not allowed', `This page answers ${allow} only.`), { allow });
    if (url.pathname === '/style.css') {
      if (!readOnly) return notAllowed('GET');
      return send(res, 200, 'text/css; charset=utf-8', STYLE_CSS, { 'cache-control': 'no-cache' });
    }
    if (url.pathname === '/favicon.ico') {
      res.writeHead(204, SECURITY_HEADERS);
      res.end();
      return;
    }
    if (url.pathname === '/') {
      if (!readOnly) return notAllowed('GET');
      return renderForm(req, res, 200, EMPTY_VALUES, []);
    }
    if (url.pathname === '/requests') {
      if (method === 'POST') return submit(req, res);
      if (!readOnly) return notAllowed('GET, POST');
      const developer = (url.searchParams.get('developer') ?? '').trim().slice(0, 200);
      const keys =
        developer === ''
          ? []
          : listPortalKeys(opts.configDir)
              .filter((k) => k.developer.toLowerCase() === developer.toLowerCase())
              .map(viewer());
      return sendHtml(res, 200, myRequestsPage(developer, keys));
    }
    const status = /^\/requests\/([^/]+)$/.exec(url.pathname);
    if (status) {
      if (!readOnly) return notAllowed('GET');
      return keyStatus(res, status[1], url.searchParams.get('issued') === '1');
    }
    sendHtml(res, 404, messagePage('Page not found', 'There is nothing at this address.'));
  }

  const server = createServer((req, res) => {
    route(req, res).catch((err: Error) => {
      opts.logger?.error({ error: err.message }, 'portal request failed');
      if (!res.headersSent)
        sendHtml(res, 500, messagePage('Something went wrong', 'The portal could not answer this request. Nothing was changed; try again.'));
      else res.destroy();
    });
  });
  return { server, issuer };
}
