// The revocation set-up the `--workers` CRL tests share: `stolen` revoked in an older list,
// `lost` too in the newer one, both client certificates beside the demo PKI's, and a bundle
// whose one API (/ca/) trusts the CA with one crl_url.
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before } from 'node:test';
import type { DemoPki } from '../../cli/pki.ts';
import { startEcho, type EchoUpstream } from './gateway-fixtures.ts';
import { createOpensslCa, type OpensslCa, type OpensslLeaf } from './openssl-pki.ts';
import { tempDir } from './ops-fixtures.ts';
import { compileWithCli, demoPki, type spawnServe } from './serve-fixtures.ts';

/** What a `--workers` CRL test file shares: set in its `before`, torn down in its `after`. */
export interface CrlWorkersSetup {
  tmp: ReturnType<typeof tempDir>;
  pki: DemoPki;
  echo: EchoUpstream;
  ca: OpensslCa;
  /** HTTP servers (serveBodies) and gateways the file started: closed and killed after it. */
  servers: Server[];
  gateways: Array<ReturnType<typeof spawnServe>>;
}

/** Registers the file's before/after: a temp dir named `name`, the demo PKI, an echo upstream and an OpenSSL CA named `caName`. */
export function crlWorkersSetup(name: string, caName: string): CrlWorkersSetup {
  const setup = { tmp: tempDir(name), servers: [], gateways: [] } as unknown as CrlWorkersSetup;
  before(async () => {
    setup.pki = await demoPki(setup.tmp.dir);
    setup.echo = await startEcho();
    setup.ca = createOpensslCa(caName);
  });
  after(async () => {
    for (const gw of setup.gateways) gw.kill();
    for (const s of setup.servers) s.close();
    setup.ca?.cleanup();
    await setup.echo?.close();
    setup.tmp.cleanup();
  });
  return setup;
}

/** Issues a client certificate `/CN=NAME` per name, copied beside the demo PKI's as NAME.pem and NAME-key.pem (what `curl` there presents). */
export function issueInto(ca: OpensslCa, pki: DemoPki, names: string[]): Record<string, OpensslLeaf> {
  const leaf: Record<string, OpensslLeaf> = {};
  for (const name of names) {
    leaf[name] = ca.issue(name, `/CN=${name}`);
    copyFileSync(leaf[name].cert, join(pki.dir, `${name}.pem`));
    copyFileSync(leaf[name].key, join(pki.dir, `${name}-key.pem`));
  }
  return leaf;
}

/** Issues `stolen` and `lost` into the demo PKI's directory; `base` revokes stolen, `full` both (signed later). */
export function stolenAndLost(ca: OpensslCa, pki: DemoPki): { base: string; full: string } {
  const leaf = issueInto(ca, pki, ['stolen', 'lost']);
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
