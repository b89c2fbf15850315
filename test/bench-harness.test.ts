// Smoke tests of the bench harness pieces that must be right for the numbers to mean anything:
// the generated compile config (real, CA-signed, distinct certificates), synthetic bundle keys
// (still a valid bundle), the /proc readers and the report's target judgement. No load is
// generated here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateCompileConfig } from '../bench/gen-config.ts';
import { withSyntheticKeys } from '../bench/bundles.ts';
import { cpuSeconds, memKiB, processTree } from '../bench/lib/proc.ts';
import { computeTargets, renderPerfSnippet, renderReport, type BenchResults } from '../bench/report.ts';
import type { LoadResult } from '../bench/workloads/load.ts';
import type { ContenderRun } from '../bench/workloads/proxy.ts';
import { version, withInactive } from '../bench/workloads/shard-reload.ts';
import { loadBundle } from '../bundle/read.ts';
import { serializeBundle } from '../bundle/write.ts';
import type { BundleContent } from '../bundle/types.ts';

test('gen-config writes APIs, policies and keys whose certificates are distinct and signed by its CA', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mtlsgate-bench-gen-'));
  try {
    const r = await generateCompileConfig(dir, { apis: 20, keys: 1500 });
    assert.ok(r.generatedInS > 0);
    const ca = new X509Certificate(readFileSync(join(dir, 'certs/ca.pem')));
    const shards = readdirSync(join(dir, 'certs'))
      .filter((d) => d !== 'ca.pem')
      .sort();
    assert.deepEqual(shards, ['000', '001']);
    const fingerprints = new Set<string>();
    for (const shard of shards) {
      for (const f of readdirSync(join(dir, 'certs', shard))) {
        const cert = new X509Certificate(readFileSync(join(dir, 'certs', shard, f)));
        assert.ok(cert.verify(ca.publicKey), `${f} is signed by the bench CA`);
        assert.equal(
          cert.subject
            .split('\n')
            .find((l) => l.startsWith('CN='))
            ?.slice(3),
          f.replace('.pem', ''),
        );
        assert.equal(cert.ca, false);
        fingerprints.add(cert.fingerprint256);
      }
    }
    assert.equal(fingerprints.size, 1500);
    const keysYaml = readFileSync(join(dir, 'keys/keys-001.yaml'), 'utf8');
    assert.equal(keysYaml.match(/^kind: key$/gm)?.length, 500);
    assert.match(keysYaml, /^certificate: \.\.\/certs\/001\/key-001499\.pem$/m);
    assert.equal(readFileSync(join(dir, 'apis/apis-00.yaml'), 'utf8').match(/^kind: api$/gm)?.length, 20);
    assert.match(readFileSync(join(dir, 'apis/apis-00.yaml'), 'utf8'), /client_certificates:\n {2}- sha256:[0-9a-f]{64}/);
    // Cached: the same parameters are not generated twice.
    assert.equal((await generateCompileConfig(dir, { apis: 20, keys: 1500 })).generatedInS, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A bundle's content with one key, alice, and her certificate. */
function aliceContent(): BundleContent {
  const fp = 'a'.repeat(64);
  return {
    apis: {},
    keys: {
      alice: {
        id: 'alice',
        certificates: [fp],
        certificate_match: null,
        token_sha256: null,
        policies: ['p'],
        access_rights: {},
        rate: null,
        quota: null,
        expires: null,
        is_inactive: false,
      },
    },
    cas: {},
    not_after: {},
    revocation: { crl_urls: [], crls: {}, denied: [] },
    index: { certs: { [fp]: { apis: [], key: 'alice' } }, tokens: {}, matches: {}, routes: {} },
  };
}

test('synthetic keys copy a compiled key and keep the bundle valid', () => {
  const content = aliceContent();
  const grown = loadBundle(serializeBundle(withSyntheticKeys(content, 'alice', 1000))).content;
  assert.equal(Object.keys(grown.keys).length, 1001);
  assert.equal(Object.keys(grown.index.certs).length, 1001);
  const k = grown.keys['synthetic-000999'];
  assert.equal(grown.index.certs[k.certificates[0]].key, 'synthetic-000999');
  assert.deepEqual(k.policies, ['p']);
  assert.equal(Object.keys(content.keys).length, 1, 'the input is not modified');
});

test('the shards bench makes a key inactive by serialising its shard alone: the same files as splitting the whole content again', () => {
  const grown = withSyntheticKeys(aliceContent(), 'alice', 500);
  const inactive = (ids: string[]) => ({
    ...grown,
    keys: { ...grown.keys, ...Object.fromEntries(ids.map((id) => [id, { ...grown.keys[id], is_inactive: true }])) },
  });
  const count = 7;
  let v = version(grown, count);
  // Descending ids, more than the shards: some shard gets a key that sorts before one it has.
  const ids = [499, 420, 377, 300, 256, 199, 150, 99, 42, 8, 7].map((i) => `synthetic-${String(i).padStart(6, '0')}`);
  for (let k = 1; k <= ids.length; k++) {
    v = withInactive(v, ids[k - 1]);
    const whole = version(inactive(ids.slice(0, k)), count);
    assert.equal(v.digest, whole.digest, `after ${k} changes`);
    assert.deepEqual(
      v.shards.map(([hex]) => hex),
      whole.shards.map(([hex]) => hex),
    );
  }
  assert.equal(withInactive(v, ids[0]), v, 'a key already inactive changes nothing');
});

test('/proc readers see this process', () => {
  assert.ok(processTree(process.pid).includes(process.pid));
  assert.ok(cpuSeconds(process.pid) > 0);
  assert.ok(memKiB(process.pid, 'VmRSS') > 1000);
});

test('the report judges targets from ratios within one run and renders every section', () => {
  const load = (rps: number, p99Ms: number): LoadResult => ({
    rps,
    p50Ms: 1,
    p99Ms,
    maxMs: p99Ms,
    complete: rps * 8,
    errors: 0,
    keepAliveRequests: rps * 8,
    tlsProtocol: 'TLSv1.3',
    serverCpu: 0.99,
    serverUsPerRequest: Math.round(1e6 / rps),
    clientCpu: 0.2,
    serverCoreOtherLoad: 0.01,
  });
  const run = (contender: string, rps: number, p99: number, hs: number): ContenderRun => ({
    contender,
    label: contender,
    alg: 'ec',
    status: 'ok',
    notes: [],
    keepAlive: load(rps, p99),
    newConnection: load(hs, 50),
  });
  const results: BenchResults = {
    machine: {
      date: '2026-11-29T05:00:00Z',
      cpuModel: 'test CPU',
      cores: 2,
      memoryGiB: 1,
      kernel: 'Linux',
      node: 'v20',
      nodeOpenssl: '3',
      systemOpenssl: 'OpenSSL 3',
      peers: { nginx: '1.22' },
      pinning: 'taskset',
      loadAverageAtStart: [0],
      gitCommit: 'abc',
    },
    options: {
      quick: false,
      only: [],
      contenders: [],
      algs: ['ec'],
      durationS: 8,
      rounds: 5,
      turnS: 3,
      handshakeDurationS: 5,
      connections: 64,
      handshakeConnections: 16,
      dynamicKeys: 100_000,
      compileApis: 1000,
      compileKeys: 100_000,
      compileCrl: 10_000,
      scaleKeys: [100_000],
    },
    sections: {
      proxy: [
        run('node-bare', 5000, 40, 400),
        run('mtlsgate-static', 4600, 44, 380),
        run('mtlsgate-dynamic', 4000, 60, 300),
        run('caddy', 4800, 30, 500),
        { contender: 'haproxy', label: 'HAProxy', alg: 'ec', status: 'not installed', notes: [] },
      ],
      compile: {
        apis: 1000,
        keys: 100_000,
        crlEntries: 10_000,
        generatedInS: 0,
        wallS: 8.5,
        cpuS: 8,
        keysPerS: 11_765,
        peakRssMiB: 700,
        bundleMiB: 60,
        exitCode: 0,
      },
    },
    errors: [],
  };
  const targets = computeTargets(results);
  const judged = (prefix: string) => targets.find((t) => t.target.startsWith(prefix))?.reached;
  assert.equal(judged('mtlsgate-static keep-alive ≥ 0.9× bare Node'), true); // 0.92
  assert.equal(judged('mtlsgate-dynamic keep-alive ≥ 0.9× bare Node'), false); // 0.80
  assert.equal(judged('mtlsgate-dynamic keep-alive p99 ≤ 1.2×'), false); // 1.5
  assert.equal(judged('mtlsgate-static keep-alive ≥ Caddy'), false);
  assert.equal(judged('mtlsgate-dynamic new connections (full handshake)'), false); // 0.75
  assert.equal(judged('compile 1000 APIs / 100000 keys < 10 s'), true);
  const md = renderReport(results);
  assert.match(md, /\| mtlsgate-static \| 4600 \| 0\.92 \|/);
  assert.match(md, /HAProxy \(ECDSA P-256\): \*\*not installed\*\*/);
  assert.match(renderPerfSnippet(results), /npm run bench/);
});
