// The revocation set-up the `--workers` CRL tests share: `stolen` revoked in an older list,
// `lost` too in the newer one, both client certificates beside the demo PKI's, and a bundle
// whose one API (/ca/) trusts the CA with one crl_url.
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { DemoPki } from '../../cli/pki.ts';
import type { OpensslCa, OpensslLeaf } from './openssl-pki.ts';
import { compileWithCli } from './serve-fixtures.ts';

/** Issues `stolen` and `lost` into the demo PKI's directory; `base` revokes stolen, `full` both (signed later). */
export function stolenAndLost(ca: OpensslCa, pki: DemoPki): { base: string; full: string } {
  const leaf: Record<string, OpensslLeaf> = {};
  for (const name of ['stolen', 'lost']) {
    leaf[name] = ca.issue(name, `/CN=${name}`);
    copyFileSync(leaf[name].cert, join(pki.dir, `${name}.pem`));
    copyFileSync(leaf[name].key, join(pki.dir, `${name}-key.pem`));
  }
  ca.revoke(leaf.stolen);
  const base = ca.gencrl();
  ca.revoke(leaf.lost);
  return { base, full: ca.gencrl() };
}

/** Compiles into DIR a bundle whose API /ca/ (to `upstream`) trusts `ca`, revoked through `crlUrl`; its path. */
export async function crlBundle(dir: string, ca: OpensslCa, upstream: string, crlUrl: string): Promise<string> {
  const cfg = join(dir, 'crl-cfg');
  mkdirSync(cfg, { recursive: true });
  writeFileSync(join(cfg, 'ca.pem'), ca.caPem);
  writeFileSync(
    join(cfg, 'config.yaml'),
    `kind: api\nid: ca\nproxy:\n  listen_path: /ca/\n  target_url: ${upstream}\nuse_keyless: true\nuse_mutual_tls_auth: true\nclient_certificates: [ca.pem]\n---\nkind: revocation\nid: internal\ncrl_urls: ["${crlUrl}"]\n`,
  );
  const bundle = join(dir, 'crl-bundle.json');
  await compileWithCli(cfg, bundle);
  return bundle;
}

/** An HTTP server on loopback answering every request with `answer`'s body, after its delay; its base URL. */
export async function serveBodies(servers: Server[], answer: () => { body: string | Buffer; delayMs?: number }): Promise<string> {
  const server = createServer((_req, res) => {
    const { body, delayMs = 0 } = answer();
    setTimeout(() => res.writeHead(200).end(body), delayMs);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}
