// What a worker's report of a large CRL costs the event loop of the `--workers` primary
// (docs/security.md section 50b):
//   node --import tsx bench/crl-primary-verify.ts [ENTRIES]
// Builds the mtlsgate:taken message a worker sends after taking a CA-signed CRL of ENTRIES
// (default 1,000,000) made-up serials, as the IPC channel delivers it (JSON), and times what
// the primary does with it on its thread: JSON.parse (node:cluster's channel does it before any
// mtlsgate code runs), checkToPrimary (the message's form) and verifyTaken (the floor's
// evidence), each alone: the first two block the loop for as long as they run; for verifyTaken
// the longest event-loop block while it runs (a 1 ms timer's worst lateness), and perf_hooks'
// max over all three.
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseCrl } from '../bundle/crl.ts';
import { fingerprintOf } from '../cert/fingerprint.ts';
import { checkToPrimary } from '../runtime/cluster/ipc-check.ts';
import { verifyTaken } from '../runtime/cluster/verify-taken.ts';
import { bigCrl } from '../test/helpers/big-crl.ts';
import { createOpensslCa } from '../test/helpers/openssl-pki.ts';

const entries = Number(process.argv[2] ?? 1_000_000);
const ca = createOpensslCa('Bench Primary CA');
const crl = bigCrl(ca.caCert, join(ca.dir, 'ca-key.pem'), entries);
const header = parseCrl(crl);
const caCert = new X509Certificate(ca.caPem);
const floor = { ca: fingerprintOf(caCert.raw), thisUpdate: header.thisUpdate.getTime(), number: header.number };
const wire = JSON.stringify({
  mtlsgate: 1,
  type: 'mtlsgate:taken',
  crl: { url: 'http://crl.example/big.crl', floor, der: crl.toString('base64'), issuer: caCert.raw.toString('base64') },
});

async function once(): Promise<{ parse: number; check: number; verify: number; verifyBlock: number; perfMax: number }> {
  let worst = 0;
  let last = performance.now();
  const ticker = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last - 1);
    last = now;
  }, 1);
  const delay = monitorEventLoopDelay({ resolution: 5 });
  delay.enable();
  await new Promise((r) => setTimeout(r, 20));
  let t = performance.now();
  const m = JSON.parse(wire);
  const parse = performance.now() - t;
  await new Promise((r) => setTimeout(r, 20));
  t = performance.now();
  const msg = checkToPrimary(m);
  const check = performance.now() - t;
  if (typeof msg === 'string' || msg.type !== 'mtlsgate:taken') throw new Error(`refused: ${String(msg)}`);
  await new Promise((r) => setTimeout(r, 20));
  t = performance.now();
  worst = 0;
  last = performance.now();
  const verified = await verifyTaken(msg, undefined);
  const verify = performance.now() - t;
  // The timer sees a block only once the loop is free again.
  await new Promise((r) => setTimeout(r, 20));
  const verifyBlock = worst;
  if (typeof verified === 'string') throw new Error(verified);
  await new Promise((r) => setTimeout(r, 50));
  delay.disable();
  clearInterval(ticker);
  return { parse, check, verify, verifyBlock, perfMax: delay.max / 1e6 };
}

for (let run = 1; run <= 3; run++) {
  const r = await once();
  console.log(
    `run ${run}: ${entries} entries, ${crl.length} bytes (${wire.length} of JSON): JSON.parse ${r.parse.toFixed(0)} ms, checkToPrimary ${r.check.toFixed(0)} ms, verifyTaken ${r.verify.toFixed(0)} ms wall, its longest event-loop block ${r.verifyBlock.toFixed(0)} ms; perf_hooks max over all ${r.perfMax.toFixed(0)} ms`,
  );
}
ca.cleanup();
process.exit(0);
