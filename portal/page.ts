// Server-rendered pages of the portal. Every value from a user or from the config goes through
// the `html` template, which escapes it; no script is served at all.
import { html, type Html } from './html.ts';
import { apiUrl, type CatalogApi, type CatalogEntry } from './catalog.ts';
import type { PortalKey } from './key-file.ts';

type Nav = 'request' | 'requests' | null;

/** "2026-01-02 03:04 UTC" from an ISO timestamp (the raw text when it is not one). */
function when(iso: string): string {
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})/.exec(iso);
  return m ? `${m[1]} ${m[2]} UTC` : iso;
}

export function layout(title: string, nav: Nav, body: Html): string {
  const current = (which: Nav) => (nav === which ? html` aria-current="page"` : '');
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · mtlsgate developer portal</title>
<link rel="stylesheet" href="/style.css">
</head>
<body>
<a class="skip-link" href="#main">Skip to content</a>
<header class="topbar"><div class="topbar-inner">
<a class="brand" href="/"><span class="brand-mark" aria-hidden="true">mT</span>mtlsgate <span class="brand-sub">Developer portal</span></a>
<nav class="nav" aria-label="Portal"><a href="/"${current('request')}>Request access</a><a href="/requests"${current('requests')}>My requests</a></nav>
</div></header>
<main id="main" tabindex="-1">
${body}
</main>
<footer>Keys issued here are declarations in the gateway's configuration: the platform team can review, change or revoke them like any other key.</footer>
</body>
</html>
`.text;
}

export type FieldName = 'policy' | 'developer' | 'certificate';

export interface FormError {
  /** The field the message belongs to; null for a problem with the whole request. */
  field: FieldName | null;
  message: string;
  /** Extra text shown verbatim (preformatted), e.g. the compiler's diagnostics. */
  details?: string;
}

export interface FormValues {
  policy: string;
  developer: string;
  certificate: string;
}

export interface RequestPageModel {
  catalog: CatalogEntry[];
  csrfToken: string;
  values: FormValues;
  errors: FormError[];
  /** The config does not compile: the portal cannot issue keys until it is fixed. */
  configBroken?: string;
}

function approvalBadge(requireApproval: boolean): Html {
  return requireApproval ? html`<span class="badge badge-wait">Needs approval</span>` : html`<span class="badge badge-ok">Instant</span>`;
}

function apiList(apis: CatalogApi[]): Html {
  return html`<ul>${apis.map((a) => html`<li>${a.name} <code>${a.domain ? a.domain : ''}${a.listenPath}</code></li>`)}</ul>`;
}

function errorSummary(errors: FormError[]): Html {
  if (errors.length === 0) return html``;
  return html`<div class="error-summary" role="alert" aria-labelledby="error-summary-title" tabindex="-1">
<h2 id="error-summary-title">There is a problem</h2>
<ul>${errors.map((e) => html`<li>${e.field ? html`<a href="#${e.field}">${e.message}</a>` : e.message}</li>`)}</ul>
${errors.filter((e) => e.details).map((e) => html`<pre>${e.details}</pre>`)}
</div>`;
}

function fieldError(errors: FormError[], field: FieldName): Html {
  const own = errors.filter((e) => e.field === field);
  return html`${own.map((e) => html`<p class="field-error" id="${field}-error"><span class="visually-hidden">Error: </span>${e.message}</p>`)}`;
}

function invalid(errors: FormError[], field: FieldName): Html {
  return errors.some((e) => e.field === field)
    ? html` aria-invalid="true" aria-describedby="${field}-hint ${field}-error"`
    : html` aria-describedby="${field}-hint"`;
}

function fieldClass(errors: FormError[], field: FieldName): string {
  return errors.some((e) => e.field === field) ? 'field has-error' : 'field';
}

function catalogChoices(model: RequestPageModel): Html {
  const { catalog, values, errors } = model;
  if (catalog.length === 0) {
    return html`<p class="empty">No API is offered in the catalog yet. The platform team publishes one by adding a <code>portal:</code> block to a policy that grants a dynamic-mTLS API.</p>`;
  }
  return html`<fieldset class="${fieldClass(errors, 'policy')}" aria-describedby="policy-hint">
<legend><span class="step"><span class="step-no" aria-hidden="true">1</span>Choose what you need</span></legend>
<p class="hint" id="policy-hint">Each plan grants the APIs listed on it. You call them with your client certificate: no token to store.</p>
${fieldError(errors, 'policy')}
<div class="plans">
${catalog.map((entry, i) => {
  // The first radio is #policy, the error summary's link target; each card's label is
  // stretched over the card (CSS), so the whole card selects it.
  const id = i === 0 ? 'policy' : `policy-${i}`;
  return html`<div class="plan">
<input type="radio" name="policy" id="${id}" value="${entry.policy}" aria-describedby="${id}-about"${values.policy === entry.policy || (catalog.length === 1 && values.policy === '') ? html` checked` : ''} required>
<label for="${id}"><span class="plan-name">${entry.name}</span> ${approvalBadge(entry.requireApproval)}</label>
<div id="${id}-about"><p>${entry.description}</p>${apiList(entry.apis)}</div>
</div>`;
})}
</div>
</fieldset>`;
}

export function requestPage(model: RequestPageModel): string {
  const { values, errors } = model;
  const form =
    model.catalog.length === 0
      ? catalogChoices(model)
      : html`<form method="post" action="/requests" enctype="multipart/form-data" novalidate>
<input type="hidden" name="csrf" value="${model.csrfToken}">
${catalogChoices(model)}
<div class="${fieldClass(errors, 'developer')}">
<label class="label" for="developer"><span class="step"><span class="step-no" aria-hidden="true">2</span>Your name or email</span></label>
<p class="hint" id="developer-hint">The platform team sees it next to your request. Use the same value to look up your requests later.</p>
${fieldError(errors, 'developer')}
<input type="text" id="developer" name="developer" autocomplete="email" maxlength="200" value="${values.developer}"${invalid(errors, 'developer')}>
</div>
<div class="${fieldClass(errors, 'certificate')}">
<label class="label" for="certificate"><span class="step"><span class="step-no" aria-hidden="true">3</span>Your public certificate</span></label>
<p class="hint" id="certificate-hint">Paste the PEM text from <code>-----BEGIN CERTIFICATE-----</code> to <code>-----END CERTIFICATE-----</code>, or choose the file below. Only the public certificate: your private key stays on your machine.</p>
${fieldError(errors, 'certificate')}
<textarea id="certificate" name="certificate" rows="10" spellcheck="false" autocomplete="off" placeholder="-----BEGIN CERTIFICATE-----&#10;MIIB...&#10;-----END CERTIFICATE-----"${invalid(errors, 'certificate')}>${values.certificate}</textarea>
<label class="hint" for="certificate_file">Or upload the certificate file (.pem, .crt, .der, at most 16 KiB)</label>
<input type="file" id="certificate_file" name="certificate_file" accept=".pem,.crt,.cer,.der,application/x-pem-file,application/pkix-cert">
</div>
<button type="submit" class="button">Request key</button>
</form>`;
  const broken = model.configBroken
    ? html`<div class="error-summary" role="alert"><h2>The portal cannot issue keys right now</h2><p>The gateway's configuration does not compile, so no new key can be added. The platform team has to fix it first.</p><pre>${model.configBroken}</pre></div>`
    : '';
  return layout(
    errors.length > 0 ? 'Error: request access' : 'Request access',
    'request',
    html`<h1>Get API access with your client certificate</h1>
<p class="lede">Pick a plan, paste your public certificate, and get a key that the gateway recognises by that certificate. Then call the API with <code>curl --cert</code>: nothing else to configure.</p>
${broken}${errorSummary(errors)}
<div class="layout">
<section class="card" aria-label="Request form">${form}</section>
<aside class="card aside" aria-labelledby="how-title">
<h2 id="how-title">No certificate yet?</h2>
<ol>
<li>Create a key pair and a certificate on your machine:<pre>openssl req -x509 -nodes \\
  -newkey ec -pkeyopt ec_paramgen_curve:P-256 \\
  -keyout my-key.pem -out my-cert.pem \\
  -days 365 -subj "/CN=you" \\
  -addext basicConstraints=critical,CA:FALSE \\
  -addext extendedKeyUsage=clientAuth</pre></li>
<li>Or use the client certificate your organisation's CA issued you.</li>
<li>Paste <code>my-cert.pem</code> here. Keep <code>my-key.pem</code> to yourself.</li>
</ol>
</aside>
</div>`,
  );
}

/**
 * pending: waits for approval. active: on in the config and in the bundle the gateway reads.
 * approved: on in the config, but the bundle has not been recompiled since (approve without --bundle).
 */
export type KeyStatus = 'pending' | 'active' | 'approved';

export type KeyView = PortalKey & { status: KeyStatus };

function statusBadge(status: KeyStatus): Html {
  if (status === 'pending') return html`<span class="badge badge-wait">Pending approval</span>`;
  if (status === 'approved') return html`<span class="badge badge-wait">Approved, not live yet</span>`;
  return html`<span class="badge badge-ok">Active</span>`;
}

export interface StatusPageModel {
  key: KeyView;
  fingerprint: string | null;
  entries: CatalogEntry[];
  gatewayUrl: string;
  justIssued: boolean;
}

export function statusPage(model: StatusPageModel): string {
  const { key, entries } = model;
  const apis = entries.flatMap((e) => e.apis);
  const banner =
    key.status === 'pending'
      ? html`<div class="banner banner-wait" role="status"><h1>${model.justIssued ? 'Request received: waiting for approval' : 'Waiting for approval'}</h1><p>The platform team approves this plan by hand. Until then the gateway answers your calls with 403 "Key is inactive, please renew".</p></div>`
      : key.status === 'approved'
        ? html`<div class="banner banner-wait" role="status"><h1>Approved: going live soon</h1><p>Your key is approved in the configuration; the gateway serves it once the platform team recompiles its bundle.</p></div>`
        : html`<div class="banner banner-ok" role="status"><h1>${model.justIssued ? 'Your key is ready' : 'Your key is active'}</h1><p>The gateway recognises your certificate${model.justIssued ? ' within a couple of seconds' : ''}. Call the API with it.</p></div>`;
  const commands =
    apis.length === 0
      ? html`<p class="empty">This key's plan offers no dynamic-mTLS API any more.</p>`
      : apis.map(
          (a) =>
            html`<h3>${a.name}</h3><pre class="command" aria-label="curl command for ${a.name}">curl --cert your-cert.pem --key your-key.pem ${apiUrl(model.gatewayUrl, a)}</pre>`,
        );
  return layout(
    `Key ${key.keyId}`,
    null,
    html`${banner}
<section class="card" aria-labelledby="details-title">
<h2 id="details-title">Key details</h2>
<dl class="facts">
<dt>Key id</dt><dd class="mono" id="key-id">${key.keyId}</dd>
<dt>Status</dt><dd id="key-status">${statusBadge(key.status)}</dd>
<dt>Plan</dt><dd>${entries.length > 0 ? entries.map((e) => e.name).join(', ') : key.entryName || key.policies.join(', ')}</dd>
<dt>Certificate SHA-256</dt><dd class="mono" id="fingerprint">${model.fingerprint ? `sha256:${model.fingerprint}` : 'unreadable'}</dd>
<dt>Requested by</dt><dd>${key.developer}</dd>
<dt>Requested</dt><dd>${when(key.requestedAt)}</dd>
</dl>
</section>
<section class="card" aria-labelledby="call-title">
<h2 id="call-title">Call the API</h2>
<p class="hint">Use the certificate you submitted and its private key (the files on your machine):</p>
${commands}
</section>
<p><a class="button button-secondary" href="/requests?developer=${encodeURIComponent(key.developer)}">See all my requests</a></p>`,
  );
}

export function myRequestsPage(developer: string, keys: KeyView[]): string {
  const results =
    developer === ''
      ? ''
      : keys.length === 0
        ? html`<p class="empty">No request from ${developer}.</p>`
        : html`<table><caption class="hint">Requests from ${developer}</caption>
<thead><tr><th scope="col">Key</th><th scope="col">Plan</th><th scope="col">Requested</th><th scope="col">Status</th></tr></thead>
<tbody>${keys.map(
            (k) =>
              html`<tr><td class="mono"><a href="/requests/${k.keyId}">${k.keyId}</a></td><td>${k.entryName || k.policies.join(', ')}</td><td>${when(k.requestedAt)}</td><td>${statusBadge(k.status)}</td></tr>`,
          )}</tbody></table>`;
  return layout(
    'My requests',
    'requests',
    html`<h1>My requests</h1>
<p class="lede">Keys requested in this portal, and whether they wait for approval.</p>
<section class="card">
<form method="get" action="/requests" class="search">
<div class="field"><label class="label" for="developer">Your name or email</label><input type="text" id="developer" name="developer" value="${developer}" maxlength="200"></div>
<button type="submit" class="button">Show requests</button>
</form>
</section>
${results ? html`<section class="card" aria-live="polite">${results}</section>` : ''}`,
  );
}

export function messagePage(title: string, message: string): string {
  return layout(
    title,
    null,
    html`<h1>${title}</h1><section class="card"><p>${message}</p><p><a class="button button-secondary" href="/">Back to the portal</a></p></section>`,
  );
}
