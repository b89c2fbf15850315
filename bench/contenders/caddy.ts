// Caddy: TLS client authentication with the pinned leaves as `trusted_leaf_certs` (an unlisted
// certificate fails the handshake), `reverse_proxy` to the same upstream. JSON config, admin
// endpoint off, no access log.
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LISTED_CLIENTS } from '../lib/pki.ts';
import { SERVER_CORE, startProc, waitForPort, which } from '../lib/proc.ts';
import type { Contender, StartArgs } from './contender.ts';

function conf({ pki, upstream, port }: StartArgs): object {
  const leaves = LISTED_CLIENTS.map((n) => new X509Certificate(readFileSync(pki.files[n].cert)).raw.toString('base64'));
  return {
    admin: { disabled: true },
    logging: { logs: { default: { level: 'ERROR' } } },
    apps: {
      tls: {
        certificates: { load_files: [{ certificate: pki.files.server.cert, key: pki.files.server.key }] },
        disable_ocsp_stapling: true,
      },
      http: {
        servers: {
          bench: {
            listen: [`127.0.0.1:${port}`],
            automatic_https: { disable: true },
            // With client auth Caddy turns strict SNI/Host matching on; the clients here dial the
            // IP (no SNI), as they do for every contender.
            strict_sni_host: false,
            tls_connection_policies: [{ client_authentication: { trusted_leaf_certs: leaves, mode: 'require' } }],
            routes: [
              {
                match: [{ path: ['/api/*'] }],
                handle: [{ handler: 'reverse_proxy', upstreams: [{ dial: `127.0.0.1:${upstream.port}` }] }],
              },
            ],
          },
        },
      },
    },
  };
}

export const caddy: Contender = {
  id: 'caddy',
  label: 'Caddy',
  binary: 'caddy',
  enforcesPin: true,
  refusal: 'handshake failure (leaf not in trusted_leaf_certs)',
  version() {
    const bin = which('caddy');
    return bin ? spawnSync(bin, ['version'], { encoding: 'utf8' }).stdout.trim().split(' ')[0] : 'not installed';
  },
  async start(_ctx, args) {
    const file = join(args.dir, 'caddy.json');
    writeFileSync(file, JSON.stringify(conf(args), null, 2));
    const proc = startProc('caddy', SERVER_CORE, which('caddy')!, ['run', '--config', file], {
      logFile: join(args.dir, 'stdout.log'),
      env: { ...process.env, HOME: args.dir, XDG_DATA_HOME: args.dir, XDG_CONFIG_HOME: args.dir },
    });
    await waitForPort(args.port, proc);
    return { proc, notes: ['GOMAXPROCS follows the 1-core affinity'] };
  },
};
