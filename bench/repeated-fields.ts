// Cost of the walk over a request's fields for copies (docs/security.md sections 45 and 45b),
// per request, on header lists as clients send them (no copies: the check finds none):
//   node --import tsx bench/repeated-fields.ts
// Prints ns per call (best of 5 rounds of 1,000,000): HTTP/2's joinRepeatedFields, section 45's
// walk it replaced (two length comparisons per field, for the baseline on the same machine), and
// HTTP/1.1's repeatedSingleField on the same fields as HTTP/1.1 clients write them (Title-Case).
import type { IncomingHttpHeaders } from 'node:http';
import { joinRepeatedFields, repeatedSingleField } from '../runtime/repeated-fields.ts';
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

/** Section 45's HTTP/2 walk: what the request paid before this one. */
function section45Walk(headers: IncomingHttpHeaders, raw: readonly string[]): void {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    if (name.length !== 13 && name.length !== 19) continue;
    if (name !== 'authorization' && name !== 'proxy-authorization') continue;
    if (headers[name] !== raw[i + 1]) headers[name] = `${headers[name]}, ${raw[i + 1]}`;
  }
}

/** The HTTP/1.1 rawHeaders of the same request: no pseudo-headers, names in Title-Case. */
function http1Raw(raw: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].startsWith(':')) continue;
    out.push(
      raw[i].replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => dash + c.toUpperCase()),
      raw[i + 1],
    );
  }
  return out;
}

for (const [name, [headers, raw]] of Object.entries({ curl, grpc, browser })) {
  const before = bestNsPerCall(() => section45Walk(headers, raw));
  const after = bestNsPerCall(() => joinRepeatedFields(headers, raw));
  const h1 = http1Raw(raw);
  const overHttp1 = bestNsPerCall(() => repeatedSingleField(h1));
  console.log(
    `${name} (${raw.length / 2} fields): HTTP/2 section 45 walk ${before.toFixed(0)} ns, joinRepeatedFields ${after.toFixed(0)} ns; HTTP/1.1 (${h1.length / 2} fields) repeatedSingleField ${overHttp1.toFixed(0)} ns`,
  );
}
