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
import { parseCrl } from '../bundle/crl.ts';
import { fingerprintOf } from '../cert/fingerprint.ts';
import { checkToPrimary } from '../runtime/cluster/ipc-check.ts';
import { verifyTaken } from '../runtime/cluster/verify-taken.ts';
import { bigCrl } from '../test/helpers/big-crl.ts';
import { createOpensslCa } from '../test/helpers/openssl-pki.ts';
import { watchLoop } from './lib/loop-block.ts';

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
  const loop = watchLoop();
  const pause = () => new Promise((r) => setTimeout(r, 20));
  await pause();
  let t = performance.now();
  const m = JSON.parse(wire);
  const parse = performance.now() - t;
  await pause();
  t = performance.now();
  const msg = checkToPrimary(m);
  const check = performance.now() - t;
  if (typeof msg === 'string' || msg.type !== 'mtlsgate:taken') throw new Error(`refused: ${String(msg)}`);
  await pause();
  loop.reset();
  t = performance.now();
  const verified = await verifyTaken(msg, undefined);
  const verify = performance.now() - t;
  if (typeof verified === 'string') throw new Error(verified);
  const verifyBlock = await loop.worst();
  const { perfMax } = await loop.stop();
  return { parse, check, verify, verifyBlock, perfMax };
}

for (let run = 1; run <= 3; run++) {
  const r = await once();
  console.log(
    `run ${run}: ${entries} entries, ${crl.length} bytes (${wire.length} of JSON): JSON.parse ${r.parse.toFixed(0)} ms, checkToPrimary ${r.check.toFixed(0)} ms, verifyTaken ${r.verify.toFixed(0)} ms wall, its longest event-loop block ${r.verifyBlock.toFixed(0)} ms; perf_hooks max over all ${r.perfMax.toFixed(0)} ms`,
  );
}
ca.cleanup();
process.exit(0);
