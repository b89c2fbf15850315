// Pages of a loopback-only portal (no sign-in): a key's status page, reached only with the
// secret receipt handed out when the key was issued, and the form that asks for a receipt.
// Nothing is listed by a name someone types: a name proves nothing.
import type { CatalogEntry } from './catalog.ts';
import { html } from './html.ts';
import type { KeyView } from './key-status.ts';
import { curlCommands, statusBadge } from './page-keys.ts';
import { type Chrome, layout, when } from './page.ts';

export interface StatusPageModel {
  chrome: Chrome;
  key: KeyView;
  entries: CatalogEntry[];
  gatewayUrl: string;
  justIssued: boolean;
  receipt: string;
}

export function statusPage(model: StatusPageModel): string {
  const { key, entries } = model;
  const apis = entries.flatMap((e) => e.apis);
  const fingerprint = key.certs[0]?.fingerprint ?? null;
  const banner =
    key.status === 'pending'
      ? html`<div class="banner banner-wait" role="status"><h1>${model.justIssued ? 'Request received: waiting for approval' : 'Waiting for approval'}</h1><p>The platform team approves this plan by hand. Until then the gateway answers your calls with 403 "Key is inactive, please renew".</p></div>`
      : key.status === 'approved'
        ? html`<div class="banner banner-wait" role="status"><h1>Approved: going live soon</h1><p>Your key is approved in the configuration; the gateway serves it once the platform team recompiles its bundle.</p></div>`
        : key.status === 'active'
          ? html`<div class="banner banner-ok" role="status"><h1>${model.justIssued ? 'Your key is ready' : 'Your key is active'}</h1><p>The gateway recognises your certificate${model.justIssued ? ' within a couple of seconds' : ''}. Call the API with it.</p></div>`
          : html`<div class="banner banner-wait" role="status"><h1>This key is ${key.status === 'expired' ? 'expired' : 'switched off'}</h1></div>`;
  const commands = curlCommands(apis, model.gatewayUrl);
  return layout(
    `Key ${key.keyId}`,
    null,
    html`${banner}
<section class="card" aria-labelledby="receipt-title">
<h2 id="receipt-title">Your receipt</h2>
<p class="hint">Keep it: this portal has no sign-in, and the receipt is the only way to see this key here again. Anyone with it can see the key's status (not use the key).</p>
<pre class="command" id="receipt">${model.receipt}</pre>
</section>
<section class="card" aria-labelledby="details-title">
<h2 id="details-title">Key details</h2>
<dl class="facts">
<dt>Key id</dt><dd class="mono" id="key-id">${key.keyId}</dd>
<dt>Status</dt><dd id="key-status">${statusBadge(key.status)}</dd>
<dt>Plan</dt><dd>${entries.length > 0 ? entries.map((e) => e.name).join(', ') : key.entryName || key.policies.join(', ')}</dd>
<dt>Certificate SHA-256</dt><dd class="mono" id="fingerprint">${fingerprint ? `sha256:${fingerprint}` : 'unreadable'}</dd>
<dt>Requested by</dt><dd>${key.developer}</dd>
<dt>Requested</dt><dd>${when(key.requestedAt)}</dd>
</dl>
</section>
<section class="card" aria-labelledby="call-title">
<h2 id="call-title">Call the API</h2>
<p class="hint">Use the certificate you submitted and its private key (the files on your machine):</p>
${commands}
</section>`,
    model.chrome,
  );
}

export function lookupPage(chrome: Chrome, notFound: boolean): string {
  return layout(
    notFound ? 'Error: my requests' : 'My requests',
    'requests',
    html`<h1>My requests</h1>
<p class="lede">Enter the receipt you got when you requested the key to see its status.</p>
${notFound ? html`<div class="error-summary" role="alert"><h2>No key for this receipt</h2><p>Check that you copied the whole receipt (key id, a dot, then the secret). The key may also have been removed by the platform team.</p></div>` : ''}
<section class="card">
<form method="get" action="/requests" class="search">
<div class="field"><label class="label" for="receipt">Receipt</label><input type="text" id="receipt" name="receipt" maxlength="200" autocomplete="off" spellcheck="false"></div>
<button type="submit" class="button">Show my request</button>
</form>
</section>`,
    chrome,
  );
}
