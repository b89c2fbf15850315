// A CRL fetcher as the unit tests drive it: URLs bound to one demo-PKI CA, fetched only when a
// test asks (refreshAll, offer), and the details of its error events collected.
import { X509Certificate } from 'node:crypto';
import type { Issued } from '../../cli/pki.ts';
import { type CrlFetcherOptions, startCrlFetcher } from '../../runtime/crl-fetcher.ts';
import { CrlStore } from '../../runtime/revocation.ts';

/** A fetcher of `urls`, each bound to `ca`; `errors`: each error event's detail without its time. */
export function askedFetcher(urls: string[], ca: Issued, opts: Partial<CrlFetcherOptions> = {}) {
  const store = new CrlStore();
  store.setUrls(urls, new Map(urls.map((u) => [u, ca.fingerprint])));
  const trusted = [{ fingerprint: ca.fingerprint, cert: new X509Certificate(ca.certPem) }];
  const errors: string[] = [];
  const fetcher = startCrlFetcher({
    snapshot: () => ({ revocationCas: () => trusted }) as never,
    store,
    intervalMs: 600_000,
    retryMs: 600_000,
    onEvent: (e) => e.detail && errors.push(e.detail.replace(/ \(at .*\)$/, '')),
    ...opts,
  });
  return { store, fetcher, errors };
}
