import type { Contender } from './contender.ts';
import { caddy } from './caddy.ts';
import { haproxy } from './haproxy.ts';
import { mtlsgateDynamic, mtlsgateStatic, mtlsgateStaticNoLog } from './mtlsgate.ts';
import { nginx } from './nginx.ts';
import { nodeBare } from './node-bare.ts';

/** In run order; the first is the baseline the ratios divide by. */
export const CONTENDERS: Contender[] = [nodeBare, mtlsgateStatic, mtlsgateDynamic, nginx, caddy, haproxy];
export type { Contender };
/** Run only when named with --contenders (diagnostics, not part of the comparison). */
export const EXTRA_CONTENDERS: Contender[] = [mtlsgateStaticNoLog];
