// Cost of an access test case (issue 13), with identities parsed once per PEM and instant
// (access/identity.ts IdentityCache, what runAccessTests does) against a PEM parsed per case:
//   node --import tsx bench/access-tests.ts [REPEAT]     (needs examples/certs: mtlsgate certs examples/certs)
// Runs the examples' cases REPEAT times (default 2000) each way and prints µs per case.
import { identityFromPem } from '../access/identity.ts';
import { decideRequest, runAccessTests } from '../access/run.ts';
import { loadBundle } from '../bundle/read.ts';
import { compileDir } from '../compiler/index.ts';
import { buildSnapshot } from '../runtime/snapshot.ts';

const repeat = Number(process.argv[2] ?? 2000);
const compiled = await compileDir(new URL('../examples', import.meta.url).pathname);
if (compiled.bundle === null) throw new Error('examples do not compile (mtlsgate certs examples/certs first)');
const cases = Array.from({ length: repeat }, () => compiled.tests.cases).flat();

let t = performance.now();
const outcomes = runAccessTests(compiled.bundle, cases);
const cached = performance.now() - t;
if (!outcomes.every((o) => o.pass)) throw new Error('an examples case failed');

const bundle = loadBundle(compiled.bundle);
const snapshot = buildSnapshot(bundle);
const now = Date.now();
t = performance.now();
for (const c of cases) decideRequest(bundle, snapshot, c.request, c.request.certificatePem === null ? null : identityFromPem(c.request.certificatePem), now);
const perCase = performance.now() - t;

const us = (ms: number) => ((ms / cases.length) * 1000).toFixed(1);
console.log(
  `${cases.length} cases: identities cached ${cached.toFixed(0)} ms (${us(cached)} µs/case); PEM parsed per case ${perCase.toFixed(0)} ms (${us(perCase)} µs/case)`,
);
