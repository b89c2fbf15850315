// The portal's compile with a cache directory (`portal --cache DIR`, issue 15): a new key file
// is the only one recompiled, and the bundle is byte for byte the one a full compile writes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { compileConfig, compilerFor } from '../portal/compile.ts';
import { tempDir } from './helpers/ops-fixtures.ts';
import { writePortalConfig } from './helpers/portal-fixtures.ts';
import { demoPki } from './helpers/serve-fixtures.ts';

test('portal --cache: a new key recompiles only its file; the bytes equal a full compile', async () => {
  const t = tempDir('portal-cache');
  try {
    const pki = await demoPki(t.dir);
    const config = writePortalConfig(t.dir, 'http://127.0.0.1:9', pki);
    const cached = compilerFor({ cacheDir: join(t.dir, 'cache') });

    const cold = await cached(config);
    assert.equal(cold.errorCount, 0, cold.report);
    assert.deepEqual((await compileConfig(config)).bundle, cold.bundle, 'cold cache: the bytes of a full compile');

    // What the portal writes for a new key: keys/portal/<id>.yaml naming a certificate.
    mkdirSync(join(config, 'keys', 'portal'), { recursive: true });
    writeFileSync(
      join(config, 'keys', 'portal', 'portal-0a1b2c3d.yaml'),
      `kind: key\nid: portal-0a1b2c3d\ncertificate: |\n${readFileSync(join(pki.dir, 'bob.pem'), 'utf8').trimEnd().replace(/^/gm, '  ')}\napply_policies: [profile-self-serve]\n`,
    );
    const warm = await cached(config);
    assert.equal(warm.errorCount, 0, warm.report);
    assert.ok((warm.cache?.hits ?? 0) > 0, `key files taken from the cache: ${JSON.stringify(warm.cache)}`);
    const full = await compileConfig(config);
    assert.ok(full.bundle !== null && warm.bundle !== null);
    assert.ok(full.bundle.equals(warm.bundle), 'warm cache after a new key: the bytes of a full compile');
    assert.ok(warm.bundle.toString().includes('portal-0a1b2c3d'), 'the new key is in the bundle');
  } finally {
    t.cleanup();
  }
});
