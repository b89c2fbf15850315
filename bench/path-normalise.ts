// Cost of path normalisation and routing per request path (issue 10 item 1):
//   node --import tsx bench/path-normalise.ts
// Prints ns per call (best of 5 rounds of 1,000,000) for the fast-path scan alone and for the
// whole routeRequest on an already-normal path and on one that needs normalising.
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
console.log(`fast-path scan (${plain.length} chars): ${scan.toFixed(0)} ns`);
console.log(`routeRequest, already normal: ${routePlain.toFixed(0)} ns`);
console.log(`routeRequest, needs normalising (${odd}): ${routeOdd.toFixed(0)} ns`);
if (sink === 0) console.log('');
