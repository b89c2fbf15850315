// HAProxy: `verify optional` against the bench CA, the leaf's SHA-256 computed once per
// connection into a session variable, an ACL on it, and the same upstream with keep-alive.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LISTED_CLIENTS } from '../lib/pki.ts';
import { SERVER_CORE, startProc, waitForPort, which } from '../lib/proc.ts';
import type { Contender, StartArgs } from './contender.ts';

function conf({ pki, upstream, port }: StartArgs, serverPem: string, pinsFile: string): string {
  return `global
  nbthread 1
  maxconn 4000
  tune.ssl.cachesize 100000
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 300s
  option http-keep-alive
frontend bench
  bind 127.0.0.1:${port} ssl crt ${serverPem} verify optional ca-file ${pki.files.ca.cert}
  tcp-request session set-var(sess.client_sha256) ssl_c_der,digest(sha256),hex,lower if { ssl_c_used }
  http-request return status 403 content-type application/json string '{"error":"client certificate not allowed"}' unless { var(sess.client_sha256) -m str -f ${pinsFile} }
  default_backend upstream
backend upstream
  http-reuse always
  server up 127.0.0.1:${upstream.port} maxconn 1000
`;
}

export const haproxy: Contender = {
  id: 'haproxy',
  label: 'HAProxy',
  binary: 'haproxy',
  enforcesPin: true,
  refusal: '403 from the fingerprint ACL (a certificate of another CA fails the handshake)',
  version() {
    const bin = which('haproxy');
    return bin ? (/version (\S+)/.exec(spawnSync(bin, ['-v'], { encoding: 'utf8' }).stdout)?.[1] ?? '?') : 'not installed';
  },
  async start(_ctx, args) {
    const serverPem = join(args.dir, 'server-with-key.pem');
    writeFileSync(serverPem, readFileSync(args.pki.files.server.cert, 'utf8') + readFileSync(args.pki.files.server.key, 'utf8'), { mode: 0o600 });
    const pinsFile = join(args.dir, 'pinned-sha256.txt');
    writeFileSync(pinsFile, LISTED_CLIENTS.map((n) => args.pki.files[n].sha256).join('\n') + '\n');
    const file = join(args.dir, 'haproxy.cfg');
    writeFileSync(file, conf(args, serverPem, pinsFile));
    const proc = startProc('haproxy', SERVER_CORE, which('haproxy')!, ['-db', '-f', file], { logFile: join(args.dir, 'stdout.log') });
    await waitForPort(args.port, proc);
    return { proc, notes: ['1 thread', 'pins by SHA-256, computed once per connection'] };
  },
};
