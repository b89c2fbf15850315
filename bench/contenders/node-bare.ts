// Node's ceiling: https + requestCert + undici Pool, no checks (bench/peers/bare-node-proxy.ts).
import { join } from 'node:path';
import { SERVER_CORE, startProc, waitForPort } from '../lib/proc.ts';
import type { Contender } from './contender.ts';

export const nodeBare: Contender = {
  id: 'node-bare',
  label: 'bare Node proxy (no checks)',
  binary: null,
  enforcesPin: false,
  refusal: 'none: admits every certificate (it is the ceiling, not a contender for the rule)',
  version() {
    return process.version;
  },
  async start(ctx, { pki, upstream, port, dir }) {
    const proc = startProc(
      'node-bare',
      SERVER_CORE,
      process.execPath,
      [...ctx.tsNode, join(ctx.root, 'bench/peers/bare-node-proxy.ts'), String(port), upstream.url, pki.files.server.cert, pki.files.server.key],
      {
        logFile: join(dir, 'stdout.log'),
        cwd: ctx.root,
      },
    );
    await waitForPort(port, proc);
    return { proc, notes: ['undici Pool, streaming, no pin, no log'] };
  },
};
