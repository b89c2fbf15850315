// What reloading a bundle with a large compiled CRL (a `kind: revocation` document's `crl:`
// file) costs the event loop (docs/security.md section 50b):
//   node --import tsx bench/crl-compiled-reload.ts [ENTRIES]
// Compiles (with the CLI) a bundle whose revocation document names a CA-signed CRL file of
// ENTRIES (default 1,000,000) made-up serials, then reloads it into a BundleStore as `serve`
// does (reloadAsync: verified and compacted in the bundle worker) while a 1 ms timer and
// perf_hooks watch the event loop, and prints the longest block and the reload's wall time.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildCompactSnapshot, buildShardedSnapshot, buildSnapshot } from '../runtime/snapshot.ts';
import { BundleStore } from '../runtime/store.ts';
import { bigCrl } from '../test/helpers/big-crl.ts';
import { createOpensslCa } from '../test/helpers/openssl-pki.ts';
import { tempDir } from '../test/helpers/ops-fixtures.ts';
import { watchLoop } from './lib/loop-block.ts';
import { compileWithCli } from '../test/helpers/serve-fixtures.ts';

const entries = Number(process.argv[2] ?? 1_000_000);
const tmp = tempDir('crl-compiled-bench');
const ca = createOpensslCa('Bench Compiled CA');
async function bundleWith(count: number, name: string): Promise<Buffer> {
  const cfg = join(tmp.dir, name);
  mkdirSync(cfg);
  writeFileSync(join(cfg, 'ca.pem'), ca.caPem);
  writeFileSync(join(cfg, 'list.crl'), bigCrl(ca.caCert, join(ca.dir, 'ca-key.pem'), count));
  writeFileSync(
    join(cfg, 'config.yaml'),
    'kind: api\nid: ca\nproxy:\n  listen_path: /ca/\n  target_url: http://127.0.0.1:1/\nuse_keyless: true\nuse_mutual_tls_auth: true\nclient_certificates: [ca.pem]\n---\nkind: revocation\nid: internal\ncrl: [list.crl]\n',
  );
  return compileWithCli(cfg, join(tmp.dir, `${name}.json`));
}
const small = await bundleWith(10, 'small');
const big = await bundleWith(entries, 'big');
const store = BundleStore.create(small, 'small', buildSnapshot, { buildCompact: buildCompactSnapshot, buildSharded: buildShardedSnapshot });

const loop = watchLoop();
const t0 = performance.now();
const result = await store.reloadAsync(big, 'big');
const took = performance.now() - t0;
const { worst: worstLate, perfMax } = await loop.stop();
if (result.status !== 'loaded') throw new Error(`reload: ${JSON.stringify(result)}`);
console.log(
  `compiled CRL of ${entries} entries, bundle ${big.length} bytes: reload ${took.toFixed(0)} ms; longest event-loop block ${worstLate.toFixed(0)} ms (perf_hooks max ${perfMax.toFixed(0)} ms)`,
);
ca.cleanup();
tmp.cleanup();
