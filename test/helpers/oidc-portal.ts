// A signed-in portal in this process, as the portal's OpenID tests set it up: the demo PKI, the
// portal config compiled into a bundle, a real OpenID provider (`oidc-provider`) the portal's
// admins sign in through, the portal on loopback HTTP with its key index read, and Chromium.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import type { DemoPki } from '../../cli/pki.ts';
import { closeServer, listen } from '../../common/listen.ts';
import { syncBundle } from '../../portal/issue-key.ts';
import { createPortal, type Portal, type PortalOptions } from '../../portal/server.ts';
import { withChromiumLaunching } from './chromium.ts';
import { bindIdp, portalOidc, startIdpForPortal, type TestIdp, type TestUser } from './oidc-idp.ts';
import { writePortalConfig } from './portal-fixtures.ts';
import { demoPki } from './serve-fixtures.ts';

export interface OidcPortal {
  pki: DemoPki;
  /** DIR/config, as writePortalConfig writes it (its upstream answers nothing). */
  config: string;
  idp: TestIdp;
  portal: Portal;
  /** The portal's base URL (http://127.0.0.1:PORT). */
  base: string;
  browser: Browser;
  close(): Promise<void>;
}

export interface OidcPortalOptions {
  /** The provider's accounts, by login. */
  users: Record<string, TestUser>;
  /** The emails the portal takes for admins. */
  admins: string[];
  /** Writes into the config (key files) before its first compile. */
  seed?: (config: string, pki: DemoPki) => Promise<void>;
  /** The provider signs with a key the test holds and its ID tokens can be rewritten (TestIdp.tamperIdToken). */
  tamperable?: boolean;
  /** More portal options (a key index on `config`, a logger, a submission limit). */
  portal?: (config: string) => Partial<PortalOptions>;
}

/** Starts it all in DIR; the portal's key index has read DIR/config/keys/portal when it resolves. */
export async function startOidcPortal(dir: string, opts: OidcPortalOptions): Promise<OidcPortal> {
  // Chromium starts while the rest is set up.
  return withChromiumLaunching((launching) => startWith(dir, opts, launching));
}

async function startWith(dir: string, opts: OidcPortalOptions, launching: Promise<Browser>): Promise<OidcPortal> {
  const pki = await demoPki(dir);
  const config = writePortalConfig(dir, 'http://127.0.0.1:9', pki);
  await opts.seed?.(config, pki);
  const bundlePath = join(dir, 'bundle.json');
  assert.equal((await syncBundle(config, bundlePath)).errorCount, 0);
  const idp = await bindIdp(opts.users, { tamperable: opts.tamperable });
  let portal: Portal | undefined;
  let browser: Browser | undefined;
  const close = async () => {
    await browser?.close();
    portal?.issuer.keyCounts.close();
    if (portal) await closeServer(portal.server);
    await idp.close();
  };
  try {
    portal = createPortal({
      configDir: config,
      bundlePath,
      gatewayUrl: 'https://gw.example.test',
      oidc: portalOidc(idp, opts.admins),
      ...opts.portal?.(config),
    });
    const base = `http://127.0.0.1:${(await listen(portal.server, 0, '127.0.0.1')).port}`;
    await portal.issuer.keyCounts.load();
    startIdpForPortal(idp, base);
    browser = await launching;
    return { pki, config, idp, portal, base, browser, close };
  } catch (err) {
    await close();
    throw err;
  }
}
