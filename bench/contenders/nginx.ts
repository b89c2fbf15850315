// NGINX: `ssl_verify_client optional_no_ca` asks for any client certificate without judging it;
// a `map` on $ssl_client_fingerprint (SHA-1: NGINX offers no SHA-256 variable) pins the list;
// proxy_pass to the upstream over a keep-alive pool.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LISTED_CLIENTS } from '../lib/pki.ts';
import { SERVER_CORE, startProc, waitForPort, which } from '../lib/proc.ts';
import { nginxPreamble } from '../upstream.ts';
import type { Contender, StartArgs } from './contender.ts';

function conf({ pki, upstream, port, dir }: StartArgs): string {
  const pins = LISTED_CLIENTS.map((n) => `    ${pki.files[n].sha1} 1;`).join('\n');
  return `${nginxPreamble(dir)}  ssl_session_cache shared:bench:10m;
  map $ssl_client_fingerprint $pinned_client {
    default 0;
${pins}
  }
  upstream bench_upstream {
    server 127.0.0.1:${upstream.port};
    keepalive 256;
    keepalive_requests 100000000;
  }
  server {
    listen 127.0.0.1:${port} ssl backlog=4096;
    ssl_certificate ${pki.files.server.cert};
    ssl_certificate_key ${pki.files.server.key};
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_verify_client optional_no_ca;
    # The load generator's ceiling: the cheapest mTLS answer there is (no proxy, no pin).
    location = /ceiling {
      return 200 'ok\n';
    }
    location /api/ {
      if ($pinned_client = 0) {
        return 403 '{"error":"client certificate not allowed"}\\n';
      }
      proxy_pass http://bench_upstream;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;
}

export const nginx: Contender = {
  id: 'nginx',
  label: 'NGINX',
  binary: 'nginx',
  enforcesPin: true,
  refusal: '403 from the fingerprint map',
  version() {
    const bin = which('nginx');
    return bin ? spawnSync(bin, ['-v'], { encoding: 'utf8' }).stderr.trim().replace('nginx version: ', '') : 'not installed';
  },
  async start(_ctx, args) {
    const file = join(args.dir, 'nginx.conf');
    writeFileSync(file, conf(args));
    const proc = startProc('nginx', SERVER_CORE, which('nginx')!, ['-e', join(args.dir, 'startup.log'), '-p', args.dir, '-c', file], {
      logFile: join(args.dir, 'stdout.log'),
    });
    await waitForPort(args.port, proc);
    return { proc, notes: ['1 worker process', 'pins by SHA-1 ($ssl_client_fingerprint)'] };
  },
};
