// Bundles for the mtlsgate contenders and the swap/reload benches: a small config compiled by
// the real compiler (`mtlsgate compile`), then, for the large cases, N synthetic keys added in
// the compiler's own shape (a copy of a compiled key with another id and fingerprint) and the
// bundle re-serialised with the shared serializeBundle. Synthetic fingerprints are random
// SHA-256 values: no certificate behind them, which the runtime cannot tell from real ones.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { loadBundle } from '../bundle/read.ts';
import { serializeBundle } from '../bundle/write.ts';
import type { BundleContent } from '../bundle/types.ts';
import type { BenchContext } from './lib/context.ts';
import { LISTED_CLIENTS, type BenchPki } from './lib/pki.ts';
import { SERVER_CORE, runPinned } from './lib/proc.ts';

export type GatewayMode = 'static' | 'dynamic';

/** Rate limit and quota so high that no request is ever refused, yet every one is counted. */
const UNREACHABLE_LIMITS = { rate: 1_000_000_000, per: 1, quota_max: 1_000_000_000_000, quota_renewal_rate: 3600 };
export const BENCH_API_ID = 'bench';

/** YAML for one API on /api/ in front of the upstream, pinning (static) or mapping (dynamic) the listed certificates. */
function writeGatewayConfig(dir: string, pki: BenchPki, upstreamUrl: string, mode: GatewayMode, limited = false): void {
  mkdirSync(dir, { recursive: true });
  const certPath = (n: (typeof LISTED_CLIENTS)[number]) => relative(dir, pki.files[n].cert);
  const api = ['kind: api', `id: ${BENCH_API_ID}`, 'proxy:', '  listen_path: /api/', `  target_url: ${upstreamUrl}`, '  strip_listen_path: false'];
  const docs: string[] = [];
  if (mode === 'static') {
    api.push('use_keyless: true', 'use_mutual_tls_auth: true', 'client_certificates:', ...LISTED_CLIENTS.map((n) => `  - ${certPath(n)}`));
    docs.push(api.join('\n'));
  } else {
    api.push('use_keyless: false', 'auth:', '  use_certificate: true');
    docs.push(api.join('\n'));
    const limits = limited ? Object.entries(UNREACHABLE_LIMITS).map(([k, v]) => `${k}: ${v}`) : [];
    docs.push(['kind: policy', 'id: bench-access', 'access_rights:', `  ${BENCH_API_ID}: {}`, ...limits].join('\n'));
    for (const n of LISTED_CLIENTS) docs.push(['kind: key', `id: ${n}`, `certificate: ${certPath(n)}`, 'apply_policies: [bench-access]'].join('\n'));
  }
  writeFileSync(join(dir, 'bench.yaml'), docs.join('\n---\n') + '\n');
}

/** Runs the real compiler on `configDir`; throws with its diagnostics when it fails. */
export async function compileWithCli(ctx: BenchContext, configDir: string, out: string, allowOutside: string[] = []): Promise<void> {
  const extra = allowOutside.flatMap((p) => ['--allow-outside', p]);
  const r = await runPinned(SERVER_CORE, process.execPath, [join(ctx.root, 'dist/mtlsgate.mjs'), 'compile', configDir, '-o', out, ...extra], 120_000);
  if (r.code !== 0) throw new Error(`mtlsgate compile ${configDir} exited ${r.code}: ${(r.stderr || r.stdout).trim().slice(0, 600)}`);
}

/** Content with `count` more keys shaped like `templateKeyId`, each on its own synthetic certificate. */
export function withSyntheticKeys(content: BundleContent, templateKeyId: string, count: number, salt = 'bench'): BundleContent {
  const template = content.keys[templateKeyId];
  if (!template) throw new Error(`template key ${templateKeyId} is not in the bundle`);
  const keys = { ...content.keys };
  const certs = { ...content.index.certs };
  for (let i = 0; i < count; i++) {
    const id = `synthetic-${String(i).padStart(6, '0')}`;
    const fingerprint = createHash('sha256').update(`${salt}:${id}`).digest('hex');
    keys[id] = { ...template, id, certificates: [fingerprint] };
    certs[fingerprint] = { apis: [], key: id };
  }
  return { ...content, keys, index: { ...content.index, certs } };
}

/** Compiles the bench gateway config and writes the bundle (plus `syntheticKeys` keys in dynamic mode). */
export async function buildGatewayBundle(
  ctx: BenchContext,
  pki: BenchPki,
  upstreamUrl: string,
  mode: GatewayMode,
  syntheticKeys: number,
  out: string,
  limited = false,
): Promise<{ keys: number; bytes: number }> {
  const configDir = join(ctx.dir('gateway-config', `${mode}-${pki.alg}${limited ? '-limited' : ''}`));
  writeGatewayConfig(configDir, pki, upstreamUrl, mode, limited);
  // The certificates live in the bench's PKI directory beside the config: allowed explicitly.
  await compileWithCli(ctx, configDir, out, [pki.dir]);
  if (mode === 'static' || syntheticKeys === 0) {
    const b = loadBundle(readFileSync(out));
    return { keys: Object.keys(b.content.keys).length, bytes: readFileSync(out).length };
  }
  const compiled = loadBundle(readFileSync(out)).content;
  const bytes = serializeBundle(withSyntheticKeys(compiled, LISTED_CLIENTS[0], syntheticKeys));
  writeFileSync(out, bytes);
  return { keys: Object.keys(compiled.keys).length + syntheticKeys, bytes: bytes.length };
}
