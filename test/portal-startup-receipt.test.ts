// A loopback-only portal's status page (a key by its receipt) while the start-up compile runs
// (portal/startup.ts): it reads the key's one file, the bundle the gateway reads now and the
// catalog compiled first, so it answers as after the start. Before session 16 it answered 503
// "starting" for as long as the compile took (seconds at 20,000 key files). The compile is held
// in its worker (test/helpers/held-portal.ts): "while it runs" is a state the test controls.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { keyFilePath, newReceipt, renderKeyFile } from '../portal/key-file.ts';
import { heldPortal } from './helpers/held-portal.ts';
import { freshClient } from './helpers/portal-fixtures.ts';

const KEY = 'portal-0000abcd';

test("a key's status page answers with its receipt while the start-up compile runs; a wrong receipt is 404, as after it", async () => {
  const { receipt, sha256 } = newReceipt(KEY);
  let fingerprint = '';
  const p = await heldPortal('portal-startup-receipt', {
    prepare: async (config, pki) => {
      const client = await freshClient(pki, join(config, '..'), 'receipt-holder');
      fingerprint = client.fingerprint;
      mkdirSync(join(config, 'keys', 'portal'), { recursive: true });
      writeFileSync(
        keyFilePath(config, KEY),
        renderKeyFile({
          keyId: KEY,
          receiptSha256: sha256,
          policy: 'profile-self-serve',
          entryName: 'Profile API',
          developer: 'dev@example.com',
          certificatePem: client.certPem,
          requireApproval: true,
          requestedAt: new Date(),
        }),
      );
    },
  });
  try {
    assert.notEqual(p.startup.message, null, 'the start-up compile is held');
    for (const path of [`/requests?receipt=${encodeURIComponent(receipt)}`, `/requests/${KEY}?receipt=${encodeURIComponent(receipt)}`]) {
      const res = await fetch(p.base + path);
      const page = await res.text();
      assert.equal(res.status, 200, `${path}: ${page.slice(0, 300)}`);
      assert.match(page, new RegExp(`id="key-id">${KEY}<`));
      assert.match(page, /Waiting for approval/);
      assert.match(page, new RegExp(`sha256:${fingerprint}`));
    }
    const wrong = await fetch(`${p.base}/requests?receipt=${KEY}.not-the-secret`);
    assert.equal(wrong.status, 404);
    assert.match(await wrong.text(), /No key for this receipt/);
    assert.notEqual(p.startup.message, null, 'all of the above while the compile was held');
    p.release();
    await p.portal.started;
    const after = await fetch(`${p.base}/requests?receipt=${encodeURIComponent(receipt)}`);
    assert.equal(after.status, 200);
    assert.match(await after.text(), /Waiting for approval/);
  } finally {
    await p.close();
  }
});
