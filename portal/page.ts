// Server-rendered pages of the portal. Every value from a user or from the config goes through
// the `html` template, which escapes it; no script is served at all.
import { html, type Html } from './html.ts';
import type { CatalogApi, CatalogEntry } from './catalog.ts';
import { signCommand } from './proof.ts';
import type { User } from './session.ts';

export type Nav = 'request' | 'requests' | 'keys' | 'admin' | null;

/** What every page shows around its content: the mode, who is signed in, the sign-out form. */
export interface Chrome {
  /** true when the portal signs users in with OpenID Connect; false: loopback-only. */
  oidc: boolean;
  user: User | null;
  /** CSRF token for the sign-out form. */
  csrfToken: string;
}

const LOOPBACK_NOTICE =
  'Loopback-only portal: there is no sign-in, so it answers only on this machine and anyone who can reach it here can request keys. Start it with --oidc-issuer to let developers sign in.';

function navLinks(nav: Nav, chrome: Chrome): Html {
  const current = (which: Nav) => (nav === which ? html` aria-current="page"` : '');
  if (!chrome.oidc) return html`<a href="/"${current('request')}>Request access</a><a href="/requests"${current('requests')}>My requests</a>`;
  if (chrome.user === null) return html``;
  return html`<a href="/"${current('request')}>Request access</a><a href="/keys"${current('keys')}>My keys</a>${
    chrome.user.admin ? html`<a href="/admin"${current('admin')}>Admin</a>` : ''
  }<form method="post" action="/auth/logout" class="signout"><input type="hidden" name="csrf" value="${chrome.csrfToken}"><span class="who" id="signed-in-as">${chrome.user.email || chrome.user.name}</span> <button type="submit" class="link-button">Sign out</button></form>`;
}

/** "2026-01-02 03:04 UTC" from an ISO timestamp (the raw text when it is not one). */
function when(iso: string): string {
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})/.exec(iso);
  return m ? `${m[1]} ${m[2]} UTC` : iso;
}

/** `refreshSeconds`: the browser loads the page again after that long (a page that is not ready yet; no script needed). */
export function layout(title: string, nav: Nav, body: Html, chrome: Chrome, refreshSeconds?: number): string {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
${refreshSeconds === undefined ? '' : html`<meta http-equiv="refresh" content="${String(refreshSeconds)}">`}
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · mtlsgate developer portal</title>
<link rel="stylesheet" href="/style.css">
</head>
<body>
<a class="skip-link" href="#main">Skip to content</a>
<header class="topbar"><div class="topbar-inner">
<a class="brand" href="/"><span class="brand-mark" aria-hidden="true">mT</span>mtlsgate <span class="brand-sub">Developer portal</span></a>
<nav class="nav" aria-label="Portal">${navLinks(nav, chrome)}</nav>
</div></header>
${chrome.oidc ? '' : html`<p class="mode-banner" role="note" id="mode-notice">${LOOPBACK_NOTICE}</p>`}
<main id="main" tabindex="-1">
${body}
</main>
<footer>Keys issued here are declarations in the gateway's configuration: the platform team can review, change or revoke them like any other key.</footer>
</body>
</html>
`.text;
}

export type FieldName = 'policy' | 'developer' | 'certificate' | 'signature';

export interface FormError {
  /** The field the message belongs to; null for a problem with the whole request. */
  field: FieldName | null;
  message: string;
  /** Extra text shown verbatim (preformatted), e.g. the compiler's diagnostics. */
  details?: string;
  /** A word for API clients, where one refusal must be told from the others (key_limit). */
  code?: string;
}

export interface FormValues {
  policy: string;
  developer: string;
  certificate: string;
}

export interface RequestPageModel {
  chrome: Chrome;
  catalog: CatalogEntry[];
  csrfToken: string;
  /** The one-time challenge to sign (proof of possession of the private key). */
  challenge: string;
  values: FormValues;
  errors: FormError[];
  /** The config does not compile: the portal cannot issue keys until it is fixed. */
  configBroken?: string;
  /** The start-up compile still runs (the catalog shown is that of the policies and APIs alone): what a request sent now does. */
  starting?: string;
}

function approvalBadge(requireApproval: boolean): Html {
  return requireApproval ? html`<span class="badge badge-wait">Needs approval</span>` : html`<span class="badge badge-ok">Instant</span>`;
}

function apiList(apis: CatalogApi[]): Html {
  return html`<ul>${apis.map((a) => html`<li>${a.name} <code>${a.domain ? a.domain : ''}${a.listenPath}</code></li>`)}</ul>`;
}

export function errorSummary(errors: FormError[]): Html {
  if (errors.length === 0) return html``;
  // autofocus (the portal serves no script): a refused form opens with the focus on what to fix,
  // so the keyboard's next Tab is its first link, and a screen reader starts there.
  return html`<div class="error-summary" role="alert" aria-labelledby="error-summary-title" tabindex="-1" autofocus>
<h2 id="error-summary-title">There is a problem</h2>
<ul>${errors.map((e) => html`<li>${e.field ? html`<a href="#${e.field}">${e.message}</a>` : e.message}</li>`)}</ul>
${errors.filter((e) => e.details).map((e) => html`<pre>${e.details}</pre>`)}
</div>`;
}

export function fieldError(errors: FormError[], field: FieldName): Html {
  const own = errors.filter((e) => e.field === field);
  return html`${own.map((e) => html`<p class="field-error" id="${field}-error"><span class="visually-hidden">Error: </span>${e.message}</p>`)}`;
}

export function invalid(errors: FormError[], field: FieldName): Html {
  return errors.some((e) => e.field === field)
    ? html` aria-invalid="true" aria-describedby="${field}-hint ${field}-error"`
    : html` aria-describedby="${field}-hint"`;
}

export function fieldClass(errors: FormError[], field: FieldName): string {
  return errors.some((e) => e.field === field) ? 'field has-error' : 'field';
}

/** The proof-of-possession step: the challenge, the exact command that signs it, the signature field. */
export function proofField(errors: FormError[], challenge: string, step: number): Html {
  return html`<div class="${fieldClass(errors, 'signature')}">
<input type="hidden" name="challenge" value="${challenge}">
<label class="label" for="signature"><span class="step"><span class="step-no" aria-hidden="true">${step}</span>Prove the certificate is yours</span></label>
<p class="hint" id="signature-hint">Sign this one-time challenge with the certificate's private key, on your machine, and paste the output. The key never leaves your machine; only whoever holds it can register the certificate.</p>
<pre class="command" id="sign-command" aria-label="command that signs the challenge">${signCommand(challenge)}</pre>
${fieldError(errors, 'signature')}
<textarea id="signature" name="signature" rows="3" spellcheck="false" autocomplete="off"${invalid(errors, 'signature')}></textarea>
</div>`;
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
${
  model.chrome.oidc
    ? html`<p class="hint">The key will belong to you (<strong>${model.chrome.user?.email || model.chrome.user?.name}</strong>): only you and the portal's admins see it.</p>`
    : html`<div class="${fieldClass(errors, 'developer')}">
<label class="label" for="developer"><span class="step"><span class="step-no" aria-hidden="true">2</span>Your name or email</span></label>
<p class="hint" id="developer-hint">The platform team sees it next to your request.</p>
${fieldError(errors, 'developer')}
<input type="text" id="developer" name="developer" autocomplete="email" maxlength="200" value="${values.developer}"${invalid(errors, 'developer')}>
</div>`
}
<div class="${fieldClass(errors, 'certificate')}">
<label class="label" for="certificate"><span class="step"><span class="step-no" aria-hidden="true">${model.chrome.oidc ? 2 : 3}</span>Your public certificate</span></label>
<p class="hint" id="certificate-hint">Paste the PEM text from <code>-----BEGIN CERTIFICATE-----</code> to <code>-----END CERTIFICATE-----</code>, or choose the file below. Only the public certificate: your private key stays on your machine.</p>
${fieldError(errors, 'certificate')}
<textarea id="certificate" name="certificate" rows="10" spellcheck="false" autocomplete="off" placeholder="-----BEGIN CERTIFICATE-----&#10;MIIB...&#10;-----END CERTIFICATE-----"${invalid(errors, 'certificate')}>${values.certificate}</textarea>
<label class="hint" for="certificate_file">Or upload the certificate file (.pem, .crt, .der, at most 16 KiB)</label>
<input type="file" id="certificate_file" name="certificate_file" accept=".pem,.crt,.cer,.der,application/x-pem-file,application/pkix-cert">
</div>
${proofField(errors, model.challenge, model.chrome.oidc ? 3 : 4)}
<button type="submit" class="button">Request key</button>
</form>`;
  const broken = model.configBroken
    ? html`<div class="error-summary" role="alert"><h2>The portal cannot issue keys right now</h2><p>The gateway's configuration does not compile, so no new key can be added. The platform team has to fix it first.</p><pre>${model.configBroken}</pre></div>`
    : model.starting
      ? html`<p class="hint" role="note" id="starting">${model.starting}</p>`
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
    model.chrome,
  );
}

export function messagePage(title: string, message: string, chrome: Chrome, details?: string): string {
  return layout(
    title,
    null,
    html`<h1>${title}</h1><section class="card"><p id="message">${message}</p>${details ? html`<pre>${details}</pre>` : ''}<p><a class="button button-secondary" href="/">Back to the portal</a></p></section>`,
    chrome,
  );
}

/** "2026-01-02 03:04 UTC" from an ISO timestamp (the raw text when it is not one). */
export { when };
