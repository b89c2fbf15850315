// The one upstream every contender proxies to: NGINX on plain HTTP returning a small fixed body
// with Content-Length and keep-alive (cheapest, so it takes little from the core it shares with
// the load generator), or a minimal Node server when NGINX is not installed.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchContext } from './lib/context.ts';
import { CLIENT_CORE, startProc, waitForPort, which, type Proc } from './lib/proc.ts';
import { freePort } from '../common/listen.ts';

const UPSTREAM_BODY = '{"ok":true,"from":"bench-upstream"}\n';

export interface Upstream {
  kind: 'nginx' | 'node';
  port: number;
  url: string;
  proc: Proc;
}

/** The start of every NGINX config the bench writes (process, temp paths, keep-alive); the `http {` block stays open. */
export function nginxPreamble(dir: string): string {
  return `daemon off;
master_process on;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
`;
}

function nginxConf(dir: string, port: number): string {
  return `${nginxPreamble(dir)}  server {
    listen 127.0.0.1:${port} backlog=4096;
    location / {
      default_type application/json;
      return 200 '${UPSTREAM_BODY.replace('\n', '\\n')}';
    }
  }
}
`;
}

export async function startUpstream(ctx: BenchContext): Promise<Upstream> {
  const dir = ctx.dir('upstream');
  const port = await freePort();
  const nginx = which('nginx');
  let proc: Proc;
  if (nginx) {
    const conf = join(dir, 'nginx.conf');
    writeFileSync(conf, nginxConf(dir, port));
    proc = startProc('upstream (nginx)', CLIENT_CORE, nginx, ['-e', join(dir, 'startup.log'), '-p', dir, '-c', conf], { logFile: join(dir, 'stdout.log') });
  } else {
    proc = startProc(
      'upstream (node)',
      CLIENT_CORE,
      process.execPath,
      [...ctx.tsNode, join(ctx.root, 'bench/peers/node-upstream.ts'), String(port), UPSTREAM_BODY],
      { logFile: join(dir, 'stdout.log'), cwd: ctx.root },
    );
  }
  await waitForPort(port, proc);
  return { kind: nginx ? 'nginx' : 'node', port, url: `http://127.0.0.1:${port}`, proc };
}
