// Issue 13, `who`: "every identity that can reach that API (and path)". On an API that needs a
// key as well as a pinned certificate (examples' logistics: static mTLS + token), a certificate
// alone reaches nothing. When no key gets through to the path asked about, `who` listed the
// pinned certificates as rows anyway ("with a key that gets through (below)", and nothing
// below), so "who can call DELETE /logistics/shipments?" was answered with two certificates
// where the gateway lets nobody through. Now the answer is "nobody", and the notes say why,
// for every key with a right on the API.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DemoPki } from '../cli/pki.ts';
import { compileExamples } from './helpers/demo-bundle.ts';
import { CLI, run } from './helpers/serve-fixtures.ts';

let tmp: string;
let pki: DemoPki;
let bundle: string;
before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'mtlsgate-who-nobody-'));
  ({ pki, bundle } = await compileExamples(tmp));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

const who = (...args: string[]) => run(process.execPath, [CLI, 'who', '--bundle', bundle, 'logistics', ...args]);

for (const [what, args] of [
  ['a path no key may reach', ['--path', '/admin']],
  ['a method no key may use', ['--method', 'DELETE', '--path', '/shipments']],
] as const) {
  for (const certs of [true, false]) {
    test(`who on ${what}${certs ? ' (--certs)' : ' (the bundle alone)'}: nobody, with each key's refusal and each admitted certificate as notes`, async () => {
      const r = await who(...args, ...(certs ? ['--certs', pki.dir] : []));
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^who can reach API "logistics" \([A-Z]+ \/logistics\/[a-z]+\):\n {2}nobody\n/);
      const j = JSON.parse((await who(...args, ...(certs ? ['--certs', pki.dir] : []), '--format', 'json')).stdout) as { rows: unknown[]; notes: string[] };
      assert.deepEqual(j.rows, []);
      // Both keys granted logistics are accounted for, and so are the two pinned certificates.
      for (const key of ['bob', 'carol'])
        assert.ok(
          j.notes.some((n) => n.startsWith(`key ${key} `) && n.includes('access.url_denied')),
          `${key}: ${JSON.stringify(j.notes)}`,
        );
      assert.equal(
        j.notes.filter((n) => /^pinned certificate sha256:[0-9a-f]{16}… .*reaches nothing here: no key gets through/.test(n)).length,
        2,
        JSON.stringify(j.notes),
      );
    });
  }
}

test('who on a path keys reach still lists the pinned certificates and the keys (unchanged)', async () => {
  const j = JSON.parse((await who('--path', '/tracking/42', '--certs', pki.dir, '--format', 'json')).stdout) as { rows: Array<{ kind: string; id: string }> };
  assert.deepEqual(j.rows.map((r) => [r.kind, r.id]).sort(), [
    ['certificate', ''],
    ['certificate', 'bob'],
    ['key', 'bob'],
    ['key', 'carol'],
  ]);
});
