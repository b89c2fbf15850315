// Pages of a signed-in portal: a developer's keys, one key (certificates, renew, switch off)
// and the admin page (pending keys, recent keys, the plan catalog). Every value goes through
// the escaping `html` template; every change is a POST form carrying the CSRF token.
import { apiUrl, type CatalogEntry } from './catalog.ts';
import { html, type Html } from './html.ts';
import type { KeyStatus, KeyView } from './key-status.ts';
import { type Chrome, errorSummary, fieldClass, fieldError, type FormError, invalid, layout, proofField, when } from './page.ts';

const STATUS_TEXT: Record<KeyStatus, string> = {
  pending: 'Awaiting approval',
  active: 'Active',
  approved: 'Approved, not live yet',
  switched_off: 'Switched off',
  expired: 'Expired',
};

export function statusBadge(status: KeyStatus): Html {
  const tone = status === 'active' ? 'badge-ok' : status === 'pending' || status === 'approved' ? 'badge-wait' : 'badge-off';
  return html`<span class="badge ${tone}" data-status="${status}">${STATUS_TEXT[status]}</span>`;
}

function planName(key: KeyView, catalog: CatalogEntry[]): string {
  const names = catalog.filter((e) => key.policies.includes(e.policy)).map((e) => e.name);
  return names.length > 0 ? names.join(', ') : key.entryName || key.policies.join(', ');
}

function shortFingerprint(fp: string | null): string {
  return fp === null ? 'unreadable' : `sha256:${fp.slice(0, 16)}…`;
}

function keysTable(keys: KeyView[], catalog: CatalogEntry[], caption: string, withOwner: boolean): Html {
  return html`<table><caption class="hint">${caption}</caption>
<thead><tr><th scope="col">Key</th>${withOwner ? html`<th scope="col">Owner</th>` : ''}<th scope="col">Plan</th><th scope="col">Certificate</th><th scope="col">Subject</th><th scope="col">Expires</th><th scope="col">Status</th></tr></thead>
<tbody>${keys.map((k) => {
    const cert = k.certs.at(-1);
    return html`<tr data-key="${k.keyId}"><td class="mono"><a href="/keys/${k.keyId}">${k.keyId}</a></td>${withOwner ? html`<td>${k.developer || k.owner}</td>` : ''}<td>${planName(k, catalog)}</td><td class="mono">${cert ? shortFingerprint(cert.fingerprint) : '-'}${k.certs.length > 1 ? html` <span class="hint">(+${k.certs.length - 1})</span>` : ''}</td><td>${cert?.subject ?? '-'}</td><td>${k.expiresAt ? when(k.expiresAt) : 'never'}</td><td>${statusBadge(k.status)}</td></tr>`;
  })}</tbody></table>`;
}

/** While the portal's start-up compile runs (StartupCompile.actionsNotice): what a key page says above its content. */
function startingNote(starting: string | null): Html | string {
  return starting ? html`<p class="hint" role="note" id="starting">${starting}</p>` : '';
}

export function myKeysPage(chrome: Chrome, keys: KeyView[], catalog: CatalogEntry[], starting: string | null = null): string {
  return layout(
    'My keys',
    'keys',
    html`<h1>My keys</h1>
<p class="lede">The keys you requested in this portal. Only you and the portal's admins see them.</p>${startingNote(starting)}
<section class="card" aria-live="polite">${
      keys.length === 0 ? html`<p class="empty">You have no key yet. <a href="/">Request one</a>.</p>` : keysTable(keys, catalog, 'Your keys', false)
    }</section>`,
    chrome,
  );
}

export interface KeyPageModel {
  chrome: Chrome;
  key: KeyView;
  catalog: CatalogEntry[];
  gatewayUrl: string;
  /** The viewer owns the key (and so may renew it or switch it off). */
  own: boolean;
  challenge: string;
  errors: FormError[];
  /** A one-line result of the last action ("Your key is switched off."), shown as a banner. */
  notice: string | null;
  certificateValue: string;
  /** StartupCompile.actionsNotice while the portal starts. */
  starting: string | null;
}

function certificatesSection(model: KeyPageModel): Html {
  const { key, own, chrome } = model;
  const removable = own && key.certs.length > 1;
  return html`<section class="card" aria-labelledby="certs-title">
<h2 id="certs-title">Certificates</h2>
<p class="hint">The gateway recognises this key by any of these certificates.</p>
<table id="certificates"><thead><tr><th scope="col">SHA-256</th><th scope="col">Subject</th><th scope="col">Expires</th>${removable ? html`<th scope="col"><span class="visually-hidden">Action</span></th>` : ''}</tr></thead>
<tbody>${key.certs.map(
    (c) =>
      html`<tr><td class="mono fingerprint">${c.fingerprint ? `sha256:${c.fingerprint}` : 'unreadable'}</td><td>${c.subject}</td><td>${c.notAfter ? when(c.notAfter) : '-'}${c.expired ? ' (expired)' : ''}</td>${
        removable && c.fingerprint
          ? html`<td><form method="post" action="/keys/${key.keyId}/remove-certificate"><input type="hidden" name="csrf" value="${chrome.csrfToken}"><input type="hidden" name="fingerprint" value="${c.fingerprint}"><button type="submit" class="button button-secondary" aria-label="Remove certificate sha256:${c.fingerprint}">Remove</button></form></td>`
          : removable
            ? html`<td></td>`
            : ''
      }</tr>`,
  )}</tbody></table>
</section>`;
}

function renewSection(model: KeyPageModel): Html {
  const { key, errors, chrome } = model;
  return html`<section class="card" aria-labelledby="renew-title">
<h2 id="renew-title">Renew: add a new certificate</h2>
<p class="hint" id="certificate-hint">Paste the new public certificate. The key keeps its current certificate too until you remove it here, so you can switch your clients over without downtime.</p>
<form method="post" action="/keys/${key.keyId}/renew" enctype="multipart/form-data" novalidate>
<input type="hidden" name="csrf" value="${chrome.csrfToken}">
<div class="${fieldClass(errors, 'certificate')}">
<label class="label" for="certificate">New public certificate</label>
${fieldError(errors, 'certificate')}
<textarea id="certificate" name="certificate" rows="8" spellcheck="false" autocomplete="off"${invalid(errors, 'certificate')}>${model.certificateValue}</textarea>
</div>
${proofField(errors, model.challenge, 2)}
<button type="submit" class="button">Add certificate</button>
</form>
</section>`;
}

function switchOffSection(model: KeyPageModel): Html {
  return html`<section class="card" aria-labelledby="off-title">
<h2 id="off-title">Switch off</h2>
<p class="hint">The gateway refuses this key from its next request on (403 "Key is inactive"). Only an admin can turn it back on.</p>
<form method="post" action="/keys/${model.key.keyId}/switch-off"><input type="hidden" name="csrf" value="${model.chrome.csrfToken}"><button type="submit" class="button button-danger">Switch off this key</button></form>
</section>`;
}

/** A curl command per API the key's plan offers, or a line saying it offers none. */
export function curlCommands(apis: CatalogEntry['apis'], gatewayUrl: string): Html | Html[] {
  return apis.length === 0
    ? html`<p class="empty">This key's plan offers no dynamic-mTLS API any more.</p>`
    : apis.map(
        (a) =>
          html`<h3>${a.name}</h3><pre class="command" aria-label="curl command for ${a.name}">curl --cert your-cert.pem --key your-key.pem ${apiUrl(gatewayUrl, a)}</pre>`,
      );
}

export function keyPage(model: KeyPageModel): string {
  const { key, catalog, own } = model;
  const apis = catalog.filter((e) => key.policies.includes(e.policy)).flatMap((e) => e.apis);
  const commands = curlCommands(apis, model.gatewayUrl);
  const open = own && key.status !== 'switched_off';
  return layout(
    `${model.errors.length > 0 ? 'Error: ' : ''}Key ${key.keyId}`,
    'keys',
    html`${model.notice ? html`<div class="banner banner-ok" role="status" id="notice"><p>${model.notice}</p></div>` : ''}${errorSummary(model.errors)}
<h1>Key <span class="mono" id="key-id">${key.keyId}</span></h1>${startingNote(model.starting)}
<section class="card" aria-labelledby="details-title">
<h2 id="details-title">Key details</h2>
<dl class="facts">
<dt>Status</dt><dd id="key-status">${statusBadge(key.status)}</dd>
<dt>Plan</dt><dd>${planName(key, catalog)}</dd>
<dt>Owner</dt><dd>${key.developer || key.owner}</dd>
<dt>Requested</dt><dd>${when(key.requestedAt)}</dd>
<dt>Expires</dt><dd>${key.expiresAt ? when(key.expiresAt) : 'never'}</dd>
</dl>
</section>
${certificatesSection(model)}
<section class="card" aria-labelledby="call-title">
<h2 id="call-title">Call the API</h2>
${commands}
</section>
${open ? renewSection(model) : ''}${open ? switchOffSection(model) : ''}`,
    model.chrome,
  );
}

export interface AdminPageModel {
  chrome: Chrome;
  /** One page of the keys waiting for approval (newest first). */
  pending: KeyView[];
  /** Which page (1-based) of how many waiting keys, `perPage` a page. */
  pendingPage: { page: number; perPage: number; total: number };
  recent: KeyView[];
  catalog: CatalogEntry[];
  notice: string | null;
  errors: FormError[];
  /** StartupCompile.actionsNotice while the portal starts. */
  starting: string | null;
  /** The key index's first read, while it runs (portal/key-index.ts): the lists are complete, the parses go on. */
  reading: { parsed: number; total: number } | null;
}

/** "Keys 201-400 of 950 waiting" with links to the newer and older pages; nothing when one page holds them all. */
function pendingPager({ page, perPage, total }: AdminPageModel['pendingPage']): Html | string {
  if (total <= perPage) return '';
  const first = Math.min((page - 1) * perPage + 1, total);
  const last = Math.min(page * perPage, total);
  const newer = page > 1 ? html` <a href="/admin?page=${page - 1}" id="pending-newer">Newer</a>` : '';
  const older = last < total ? html` <a href="/admin?page=${page + 1}" id="pending-older">Older</a>` : '';
  return html`<p class="hint" id="pending-pages">Keys ${first}-${last} of ${total} waiting, newest first.${newer}${older}</p>`;
}

export function adminPage(model: AdminPageModel): string {
  const { chrome, catalog } = model;
  const action = (k: KeyView, what: 'approve' | 'deny', label: string, tone: string) =>
    html`<form method="post" action="/admin/keys/${k.keyId}/${what}" class="inline"><input type="hidden" name="csrf" value="${chrome.csrfToken}"><button type="submit" class="button ${tone}" aria-label="${label} ${k.keyId}">${label}</button></form>`;
  const pending =
    model.pending.length === 0
      ? html`<p class="empty">No key is waiting for approval.</p>`
      : html`<table id="pending"><thead><tr><th scope="col">Key</th><th scope="col">Owner</th><th scope="col">Plan</th><th scope="col">Certificate</th><th scope="col">Requested</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
<tbody>${model.pending.map(
          (k) =>
            html`<tr data-key="${k.keyId}"><td class="mono"><a href="/keys/${k.keyId}">${k.keyId}</a></td><td>${k.developer || k.owner}</td><td>${planName(k, catalog)}</td><td class="mono">${shortFingerprint(k.certs[0]?.fingerprint ?? null)}</td><td>${when(k.requestedAt)}</td><td>${action(k, 'approve', 'Approve', '')} ${action(k, 'deny', 'Deny', 'button-danger')}</td></tr>`,
        )}</tbody></table>`;
  const plans = html`<table id="plans"><thead><tr><th scope="col">Plan</th><th scope="col">Policy</th><th scope="col">APIs</th><th scope="col">Approval</th></tr></thead>
<tbody>${catalog.map(
    (e) =>
      html`<tr><td>${e.name}</td><td class="mono">${e.policy}</td><td>${e.apis.map((a) => a.name).join(', ')}</td><td>${e.requireApproval ? 'by an admin' : 'instant'}</td></tr>`,
  )}</tbody></table>`;
  return layout(
    'Admin',
    'admin',
    html`${model.notice ? html`<div class="banner banner-ok" role="status" id="notice"><p>${model.notice}</p></div>` : ''}${errorSummary(model.errors)}
<h1>Admin</h1>
<p class="lede">Each action edits the key's file in the config directory, recompiles the bundle and is logged with your name.</p>${startingNote(model.starting)}${readingNote(model.reading)}
<section class="card" aria-labelledby="pending-title"><h2 id="pending-title">Waiting for approval</h2>${pendingPager(model.pendingPage)}${pending}</section>
<section class="card" aria-labelledby="recent-title"><h2 id="recent-title">Recent keys</h2>${
      model.recent.length === 0 ? html`<p class="empty">No portal key yet.</p>` : keysTable(model.recent, catalog, 'The 50 newest portal keys', true)
    }</section>
<section class="card" aria-labelledby="plans-title"><h2 id="plans-title">Plan catalog</h2>${plans}</section>`,
    chrome,
  );
}

/** While the key index parses its files after a start: how far, and that the admin page's lists are whole all the same. */
function readingNote(reading: AdminPageModel['reading']): Html | string {
  if (reading === null) return '';
  return html`<p class="hint" id="reading">The portal has just started and is still reading its key files (${reading.parsed.toLocaleString('en-US')} of ${reading.total.toLocaleString('en-US')} parsed). The lists below are complete all the same: every file that may be waiting for approval or among the newest was read for this page.</p>`;
}

/**
 * While the portal reads its key files after a start: what the keys pages show instead of a
 * part of the list (the browser asks again after `retrySeconds`).
 */
export function keysLoadingPage(chrome: Chrome, nav: 'keys' | 'admin', progress: { read: number; total: number }, retrySeconds: number): string {
  const title = nav === 'keys' ? 'My keys' : 'Admin';
  return layout(
    title,
    nav,
    html`<h1>${title}</h1>
<section class="card" aria-live="polite"><p id="loading">The portal has just started and is reading its key files (${progress.read.toLocaleString('en-US')} of ${progress.total.toLocaleString('en-US')}). This page shows the keys once all are read; it reloads on its own.</p>
<p><a class="button button-secondary" href="${nav === 'keys' ? '/keys' : '/admin'}">Reload</a></p></section>`,
    chrome,
    retrySeconds,
  );
}

export function signInPage(chrome: Chrome, returnTo: string, message: string | null): string {
  return layout(
    'Sign in',
    null,
    html`<h1>Sign in to the developer portal</h1>
<section class="card">${message ? html`<p id="message">${message}</p>` : ''}
<p>Sign in with your organisation's account to request API keys and manage your own.</p>
<p><a class="button" id="sign-in" href="/auth/login?return=${encodeURIComponent(returnTo)}">Sign in</a></p>
</section>`,
    chrome,
  );
}
