// Cost of joining the copies of an HTTP/2 authorization field (docs/security.md section 45),
// per request, on header lists as clients send them (no copies: the check finds none):
//   node --import tsx bench/http2-repeated-authorization.ts
// Prints ns per call (best of 5 rounds of 1,000,000).
import type { IncomingHttpHeaders } from 'node:http';
import { joinRepeatedAuthorization } from '../runtime/http2.ts';
import { bestNsPerCall } from './lib/best-of.ts';

/** The raw list and the object node:http2 builds from it (null prototype, as its toHeaderObject makes). */
function request(raw: string[]): [IncomingHttpHeaders, string[]] {
  const headers = Object.create(null) as IncomingHttpHeaders;
  for (let i = 0; i < raw.length; i += 2) headers[raw[i]] = raw[i + 1];
  return [headers, raw];
}
const curl = request([
  ':method',
  'GET',
  ':path',
  '/payments/v2/charges',
  ':scheme',
  'https',
  ':authority',
  'api.example.com',
  'user-agent',
  'curl/8.5.0',
  'accept',
  '*/*',
  'authorization',
  'Bearer 0123456789abcdef',
]);
const grpc = request([
  ':method',
  'POST',
  ':scheme',
  'https',
  ':path',
  '/pkg.Svc/Call',
  ':authority',
  'api.example.com',
  'grpc-accept-encoding',
  'identity,deflate,gzip',
  'accept-encoding',
  'identity',
  'user-agent',
  'grpc-node-js/1.12.0',
  'content-type',
  'application/grpc',
  'te',
  'trailers',
]);
const browser = request([
  ':method',
  'GET',
  ':authority',
  'app.example.com',
  ':scheme',
  'https',
  ':path',
  '/api/orders?page=2',
  'sec-ch-ua',
  '"Chromium";v="131"',
  'sec-ch-ua-mobile',
  '?0',
  'sec-ch-ua-platform',
  '"Linux"',
  'user-agent',
  'Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0',
  'accept',
  'application/json',
  'sec-fetch-site',
  'same-origin',
  'sec-fetch-mode',
  'cors',
  'sec-fetch-dest',
  'empty',
  'referer',
  'https://app.example.com/orders',
  'accept-encoding',
  'gzip, deflate, br, zstd',
  'accept-language',
  'en-GB,en;q=0.9',
  'cookie',
  'session=abc; theme=dark',
  'priority',
  'u=1, i',
]);

for (const [name, [headers, raw]] of Object.entries({ curl, grpc, browser })) {
  const ns = bestNsPerCall(() => joinRepeatedAuthorization(headers, raw));
  console.log(`joinRepeatedAuthorization, ${name} (${raw.length / 2} fields): ${ns.toFixed(0)} ns`);
}
