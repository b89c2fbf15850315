// Cost of taking the client certificate from a trusted load balancer's header (issue 12,
// --client-cert-header):
//   node --import tsx bench/cert-header.ts
// Prints, for each format, ns per request (best of 5 rounds) when the connection's previous
// request carried the same value (one string comparison), when another connection did (the LRU:
// hashing the value, Map lookup and bump), both with the header deletion; and µs for a value seen
// for the first time (base64/URL decoding, X509Certificate, SHA-256).
import { X509Certificate } from 'node:crypto';
import { writeDemoPki } from '../cli/pki.ts';
import { CertHeaderReader, certHeaderSpec } from '../runtime/client-cert-header.ts';
import { TrustedProxies } from '../runtime/trusted-proxies.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bestNsPerCall } from './lib/best-of.ts';

const dir = mkdtempSync(join(tmpdir(), 'bench-cert-header-'));
const pki = await writeDemoPki(dir);
rmSync(dir, { recursive: true, force: true });
const pem = pki.clients.alice.certPem;
const pem2 = pki.clients.bob.certPem;
const der = (p: string) => new X509Certificate(p).raw;
const formats = [
  { flag: 'client-cert', header: 'client-cert', value: (p: string) => `:${der(p).toString('base64')}:` },
  { flag: 'xfcc', header: 'x-forwarded-client-cert', value: (p: string) => `By=spiffe://lb;Hash=x;Cert="${encodeURIComponent(p)}";Subject="CN=a"` },
  { flag: 'x-amzn-mtls-clientcert', header: 'x-amzn-mtls-clientcert', value: (p: string) => encodeURIComponent(p) },
];
const socket = { remoteAddress: '10.1.2.3' };
const trusted = new TrustedProxies(['10.0.0.0/8']);

let sink = 0;
for (const f of formats) {
  const a = f.value(pem);
  const b = f.value(pem2);
  const hit = new CertHeaderReader(certHeaderSpec(f.flag), trusted);
  // node:http gives every request a fresh headers object and a fresh string (whose hash the Map
  // lookup computes): both are made here too, and their cost alone is subtracted.
  const bytes = Buffer.from(a, 'latin1');
  const fresh = bestNsPerCall(() => {
    const h = { [f.header]: bytes.toString('latin1'), host: 'h' };
    if (h.host !== undefined) sink++;
  }, 200_000);
  // Same connection, same client as its previous request: one string comparison.
  const sameConnection =
    bestNsPerCall(() => {
      if (hit.identity({ [f.header]: bytes.toString('latin1'), host: 'h' }, socket, null) !== null) sink++;
    }, 200_000) - fresh;
  // Another connection each time (a load balancer multiplexing clients): the LRU lookup.
  const sockets = Array.from({ length: 64 }, () => ({ remoteAddress: '10.1.2.3' }));
  let k = 0;
  const cached =
    bestNsPerCall(() => {
      k = (k + 1) & 63;
      if (hit.identity({ [f.header]: bytes.toString('latin1'), host: 'h' }, sockets[k], null) !== null) sink++;
    }, 200_000) - fresh;
  // Cache of one entry and two alternating values: every lookup parses.
  const miss = new CertHeaderReader(certHeaderSpec(f.flag), trusted, 1);
  let flip = false;
  const parse = bestNsPerCall(() => {
    flip = !flip;
    if (miss.identity({ [f.header]: flip ? a : b }, socket, null) !== null) sink++;
  }, 5_000);
  console.log(
    `${f.flag.padEnd(24)} value ${String(a.length).padStart(4)} chars: same connection ${sameConnection.toFixed(0)} ns/request, ` +
      `LRU hit ${cached.toFixed(0)} ns/request, first sight (parse) ${(parse / 1000).toFixed(1)} µs`,
  );
}
if (sink === 0) console.log('');
