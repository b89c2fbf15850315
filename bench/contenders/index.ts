import type { Contender } from './contender.ts';
import { caddy } from './caddy.ts';
import { haproxy } from './haproxy.ts';
import { mtlsgateDynamic, mtlsgateStatic, mtlsgateStaticNoLog } from './mtlsgate.ts';
import { nginx } from './nginx.ts';
import { nodeBare } from './node-bare.ts';

/** In run order; the first is the baseline the ratios divide by. mtlsgate-static-nolog is a
 *  diagnostic row (the same gateway without its per-request log line), not a contender. */
export const CONTENDERS: Contender[] = [nodeBare, mtlsgateStatic, mtlsgateDynamic, mtlsgateStaticNoLog, nginx, caddy, haproxy];
export type { Contender };
