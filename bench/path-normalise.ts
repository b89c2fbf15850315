// Cost of path normalisation and routing per request path (issue 10 item 1):
//   node --import tsx bench/path-normalise.ts
// Prints ns per call (best of 5 rounds of 1,000,000) for the fast-path scan alone and for the
// whole routeRequest on an already-normal path, on one that needs normalising and on one with
// escaped UTF-8.
import { BAD_PATH, isPlainPath, routeRequest, type RouteTables } from '../runtime/route.ts';
import { bestNsPerCall } from './lib/best-of.ts';

const tables: RouteTables<string> = {
  byHost: new Map(),
  anyHost: new Map([
    ['/', 'open'],
    ['/admin/', 'admin'],
    ['/payments/v2/', 'payments'],
  ]),
};
const plain = '/payments/v2/charges/ch_123/refunds';
const odd = '/payments/v2/./charges//%63h_123/refunds';
/** Escaped UTF-8 (a French and a Japanese segment): each code point is checked for compatibility forms (section 37). */
const utf8 = '/payments/v2/caf%C3%A9/%E6%97%A5%E6%9C%AC%E8%AA%9E';

let sink = 0;
const scan = bestNsPerCall(() => {
  if (isPlainPath(plain)) sink++;
});
const routePlain = bestNsPerCall(() => {
  if (routeRequest(tables, 'h', plain) !== BAD_PATH) sink++;
});
const routeOdd = bestNsPerCall(() => {
  if (routeRequest(tables, 'h', odd) !== BAD_PATH) sink++;
});
const routeUtf8 = bestNsPerCall(() => {
  if (routeRequest(tables, 'h', utf8) !== BAD_PATH) sink++;
});
console.log(`fast-path scan (${plain.length} chars): ${scan.toFixed(0)} ns`);
console.log(`routeRequest, already normal: ${routePlain.toFixed(0)} ns`);
console.log(`routeRequest, needs normalising (${odd}): ${routeOdd.toFixed(0)} ns`);
console.log(`routeRequest, escaped UTF-8 (${utf8}): ${routeUtf8.toFixed(0)} ns`);
if (sink === 0) console.log('');
