// mtlsgate itself, as users run it: `node dist/mtlsgate.mjs serve` on a bundle the compiler
// built from YAML. Static: the API pins the listed certificates. Dynamic: the certificates
// identify keys, in a bundle holding `dynamicKeys` keys; optionally rate-limited (in-process,
// or through Redis).
import { join } from 'node:path';
import { buildGatewayBundle, type GatewayMode } from '../bundles.ts';
import { serveCommand } from '../lib/serve-command.ts';
import { memKiB, SERVER_CORE, startProc, waitForPort } from '../lib/proc.ts';
import { freePort } from '../../common/listen.ts';
import type { Contender } from './contender.ts';

export interface MtlsgateVariant {
  mode: GatewayMode;
  /** Synthetic keys added to a dynamic bundle (0 = the two real keys only). */
  keys?: number;
  /** Give the keys a (never reached) rate limit and quota, so the limiter runs on every request. */
  limited?: boolean;
  redisUrl?: string;
  /** More `serve` flags (e.g. --log-level warn). */
  extraArgs?: string[];
  id?: string;
  label?: string;
  /** Another checkout or build whose dist/mtlsgate.mjs serves (a baseline); the bundle is still
   *  compiled by this one. */
  root?: string;
}

export function mtlsgateContender(v: MtlsgateVariant): Contender {
  return {
    id: v.id ?? `mtlsgate-${v.mode}`,
    label: v.label ?? (v.mode === 'static' ? 'mtlsgate static mTLS' : 'mtlsgate dynamic mTLS'),
    binary: null,
    enforcesPin: true,
    refusal: v.mode === 'static' ? '403 mtls.cert_not_allowed' : '401 auth.cert_not_found',
    version() {
      return 'this checkout';
    },
    async start(ctx, { pki, upstream, port, dir }) {
      const bundle = join(dir, 'bundle.json');
      const synthetic = v.mode === 'dynamic' ? (v.keys ?? ctx.opts.dynamicKeys) : 0;
      const built = await buildGatewayBundle(ctx, pki, upstream.url, v.mode, synthetic, bundle, v.limited ?? false);
      const admin = await freePort();
      const args = serveCommand(v.root ?? ctx.root, bundle, pki, port, admin);
      if (v.redisUrl) args.push('--redis', v.redisUrl);
      if (v.extraArgs) args.push(...v.extraArgs);
      const proc = startProc(`mtlsgate-${v.mode}`, SERVER_CORE, process.execPath, args, { logFile: join(dir, 'gateway.log'), cwd: dir });
      await waitForPort(port, proc, 60_000);
      const rss = Math.round(memKiB(proc.pid, 'VmRSS') / 1024);
      return {
        proc,
        adminUrl: `http://127.0.0.1:${admin}`,
        bundleFile: bundle,
        notes: [
          `${built.keys} keys, bundle ${(built.bytes / 2 ** 20).toFixed(1)} MiB, RSS at start ${rss} MiB`,
          v.extraArgs?.includes('--log-level') ? `serve ${v.extraArgs.join(' ')}` : 'one JSON log line per request, to a file',
        ],
      };
    },
  };
}

export const mtlsgateStatic = mtlsgateContender({ mode: 'static' });
export const mtlsgateDynamic = mtlsgateContender({ mode: 'dynamic', id: 'mtlsgate-dynamic' });
/** A diagnostic row, not a contender: what the per-request log line costs (`serve --log-level warn`). */
export const mtlsgateStaticNoLog = mtlsgateContender({
  mode: 'static',
  id: 'mtlsgate-static-nolog',
  label: 'mtlsgate static mTLS, no request log',
  extraArgs: ['--log-level', 'warn'],
});
