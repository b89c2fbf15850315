// The portal's count of keys per developer (docs/security.md section 25) when requests race:
// the issuer as the portal runs it (real compile of a real config directory, real client
// certificates, proofs signed with their private keys), many requests of one developer at
// once through one portal, and through two portals on the same directory (two issuers, as two
// portal processes: each keeps its own count and sees the other's files only on disk).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DemoPki } from '../cli/pki.ts';
import { compileConfig } from '../portal/compile.ts';
import { editPortalKey } from '../portal/edit-key.ts';
import { type IssueOutcome, Issuer, syncBundle } from '../portal/issue-key.ts';
import { listPortalKeys, renderKeyFile } from '../portal/key-file.ts';
import { tempDir } from './helpers/ops-fixtures.ts';
import { freshClient, issueAs, writePortalConfig } from './helpers/portal-fixtures.ts';
import { demoPki } from './helpers/serve-fixtures.ts';

const t = tempDir('portal-key-count');
let pki: DemoPki;
let config: string;
let bundlePath: string;
let serial = 0;

before(async () => {
  pki = await demoPki(t.dir);
  config = writePortalConfig(t.dir, 'http://127.0.0.1:9', pki);
  bundlePath = join(t.dir, 'bundle.json');
  assert.equal((await syncBundle(config, bundlePath)).errorCount, 0);
});

after(() => t.cleanup());

/** An issuer on the shared directory with a cap of `limit`, as one portal process holds it. */
function portalIssuer(limit: number): Issuer {
  return new Issuer({ configDir: config, bundlePath, compile: compileConfig, developerKeyLimit: limit });
}

/** `owner` asks `issuer` for a key with a fresh certificate and a valid proof of its private key. */
const requestKey = (issuer: Issuer, owner: string): Promise<IssueOutcome> => issueAs(issuer, pki, t.dir, owner, `${owner}-${++serial}`);

const ownedBy = (owner: string) => listPortalKeys(config).filter((k) => k.owner === owner);
const statuses = (outcomes: IssueOutcome[]) => outcomes.map((o) => (o.ok ? 201 : o.status)).sort();

test('seven requests of one developer at once through one portal: three keys issued (the cap), four refused with key_limit', async () => {
  const issuer = portalIssuer(3);
  const outcomes = await Promise.all(Array.from({ length: 7 }, () => requestKey(issuer, 'lee')));
  assert.deepEqual(statuses(outcomes), [201, 201, 201, 403, 403, 403, 403]);
  for (const o of outcomes) if (!o.ok) assert.equal(o.errors[0]?.code, 'key_limit');
  assert.equal(ownedBy('lee').length, 3);
});

test('two portals on one directory, four requests each at once: three keys in all; each portal counts the keys the other wrote', async () => {
  const [a, b] = [portalIssuer(3), portalIssuer(3)];
  const outcomes = await Promise.all([...Array.from({ length: 4 }, () => requestKey(a, 'mo')), ...Array.from({ length: 4 }, () => requestKey(b, 'mo'))]);
  assert.deepEqual(statuses(outcomes), [201, 201, 201, 403, 403, 403, 403, 403]);
  assert.equal(ownedBy('mo').length, 3);
  assert.equal(await a.keyCounts?.count('mo'), 3);
  assert.equal(await b.keyCounts?.count('mo'), 3);
});

test('a file removed by hand or by a portal edit (deny) frees a place; a file written by hand in keys/portal takes one', async () => {
  const issuer = portalIssuer(2);
  const first = await requestKey(issuer, 'noor');
  const second = await requestKey(issuer, 'noor');
  assert.ok(first.ok && second.ok);
  assert.equal((await requestKey(issuer, 'noor')).ok, false);

  rmSync(join(config, 'keys', 'portal', `${first.keyId}.yaml`));
  const third = await requestKey(issuer, 'noor');
  assert.ok(third.ok, 'the file removed by hand freed its place');
  assert.equal((await requestKey(issuer, 'noor')).ok, false);

  // The admin's deny removes the file through the portal's edit, which tells the count.
  const denied = await editPortalKey({ configDir: config, bundlePath, compile: compileConfig, keyCounts: issuer.keyCounts }, second.keyId, () => null);
  assert.deepEqual(denied, { ok: true });
  assert.equal(await issuer.keyCounts?.count('noor'), 1);

  // A key file written by hand (or by a portal process started earlier) counts from the next request on.
  const client = await freshClient(pki, t.dir, 'noor-by-hand');
  writeFileSync(
    join(config, 'keys', 'portal', 'portal-0000beef.yaml'),
    renderKeyFile({
      keyId: 'portal-0000beef',
      owner: 'noor',
      policy: 'profile-self-serve',
      entryName: 'Profile API',
      developer: 'noor@example.com',
      certificatePem: client.certPem,
      requireApproval: false,
      requestedAt: new Date(),
    }),
  );
  const refused = await requestKey(issuer, 'noor');
  assert.equal(refused.ok, false);
  assert.match(refused.ok ? '' : String(refused.errors[0]?.message), /^You have 2 keys in this portal, and it issues at most 2/);
  assert.equal(ownedBy('noor').length, 2);
});

test('a portal started on a directory with keys counts them from its first request', async () => {
  const issuer = portalIssuer(3); // lee holds 3 keys from the first test
  assert.equal(await issuer.keyCounts?.count('lee'), 3);
  const refused = await requestKey(issuer, 'lee');
  assert.equal(refused.ok ? 201 : refused.status, 403);
});
