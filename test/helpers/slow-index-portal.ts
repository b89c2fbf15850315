// A signed-in portal in this process whose key index parses slowly (100 ms a file while
// `slow`; and reads each file's text slowly too with `readMs`), so that the background read of
// its key files after a start lasts long enough to be seen; a real OpenID provider and
// Chromium. Shared by test/portal-key-load.test.ts and test/portal-key-scan.test.ts.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { closeServer, listen } from '../../common/listen.ts';
import { syncBundle } from '../../portal/issue-key.ts';
import type { DemoPki } from '../../cli/pki.ts';
import { parsePortalKey, readKeyFileText } from '../../portal/key-file.ts';
import { PortalKeyIndex } from '../../portal/key-index.ts';
import { createPortal, type Portal } from '../../portal/server.ts';
import { withChromiumLaunching } from './chromium.ts';
import { bindIdp, portalOidc, startIdpForPortal, type TestIdp } from './oidc-idp.ts';
import { portalKeyText, writePortalConfig } from './portal-fixtures.ts';
import { demoPki } from './serve-fixtures.ts';

export interface SlowIndexPortal {
  portal: Portal;
  pki: DemoPki;
  /** The config directory (its keys/portal holds the files). */
  config: string;
  keyIndex: PortalKeyIndex;
  base: string;
  idp: TestIdp;
  browser: Browser;
  /** Files the index has parsed so far; and how many when the portal was made. */
  parses(): number;
  parsedWhenCreated: number;
  /** false: parses at full speed from now on. */
  slow: boolean;
  close(): Promise<void>;
}

/**
 * `others` key files of dev-0, dev-1, ... (ids from portal-00001000) and `owned` of `owner`
 * (who can sign in, bo@example.com, an admin), each as the portal writes it unless `edit`
 * rewrites its text; requested a minute apart.
 */
export async function slowIndexPortal(
  dir: string,
  opts: {
    others: number;
    owned: string[];
    owner: string;
    edit?: (keyId: string, i: number, text: string) => string;
    /** While `slow`: each file's text is read this much slower (0: at full speed). */
    readMs?: number;
    /** The index's PAGE_WAIT_MS (portal/key-index.ts). */
    pageWaitMs?: number;
    developerKeyLimit?: number;
  },
): Promise<SlowIndexPortal> {
  // Chromium starts while the key files are made, and is up before the portal starts its held
  // read: that read blocks this process 100 ms a file, which would slow each launch message.
  return withChromiumLaunching((launching) => makeSlowIndexPortal(dir, opts, launching));
}

async function makeSlowIndexPortal(dir: string, opts: Parameters<typeof slowIndexPortal>[1], launching: Promise<Browser>): Promise<SlowIndexPortal> {
  const pki = await demoPki(dir);
  const config = writePortalConfig(dir, 'http://127.0.0.1:9', pki);
  mkdirSync(join(config, 'keys', 'portal'), { recursive: true });
  const ids = [...Array.from({ length: opts.others }, (_, i) => `portal-${(0x1000 + i).toString(16).padStart(8, '0')}`), ...opts.owned];
  // All at once: WebCrypto's key generation and signing run on libuv's threads.
  await Promise.all(
    ids.map(async (keyId, i) => {
      const owner = opts.owned.includes(keyId) ? opts.owner : `dev-${i}`;
      const text = await portalKeyText(pki, dir, keyId, owner, false, new Date(Date.UTC(2026, 0, 1, 0, i)));
      writeFileSync(join(config, 'keys', 'portal', `${keyId}.yaml`), opts.edit?.(keyId, i, text) ?? text);
    }),
  );
  const bundlePath = join(dir, 'bundle.json');
  assert.equal((await syncBundle(config, bundlePath)).errorCount, 0);
  const idp = await bindIdp({ [opts.owner]: { email: 'bo@example.com', name: 'Bo' } });
  const browser = await launching;
  let parses = 0;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  const made = {} as SlowIndexPortal;
  made.slow = true;
  const readText = (path: string) => {
    if (made.slow && opts.readMs) Atomics.wait(pause, 0, 0, opts.readMs);
    return readKeyFileText(path);
  };
  const slowParse = (text: string, keyId: string) => {
    parses++;
    if (made.slow) Atomics.wait(pause, 0, 0, 100);
    return parsePortalKey(text, keyId);
  };
  const keyIndex = new PortalKeyIndex(config, slowParse, undefined, { readText, pageWaitMs: opts.pageWaitMs });
  const portal = createPortal({
    configDir: config,
    bundlePath,
    gatewayUrl: 'https://gw.example.test',
    oidc: portalOidc(idp, ['bo@example.com']),
    keyIndex,
    developerKeyLimit: opts.developerKeyLimit,
  });
  const parsedWhenCreated = parses;
  const base = `http://127.0.0.1:${(await listen(portal.server, 0, '127.0.0.1')).port}`;
  startIdpForPortal(idp, base);
  return Object.assign(made, {
    portal,
    pki,
    config,
    keyIndex,
    base,
    idp,
    browser,
    parses: () => parses,
    parsedWhenCreated,
    close: async () => {
      made.slow = false;
      await browser.close();
      keyIndex.close();
      await closeServer(portal.server);
      await idp.close();
    },
  });
}
