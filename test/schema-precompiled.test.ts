// dist/ validates documents with ajv's standalone code compiled at build time
// (compiler/schema-precompiled.ts, scripts/build.mjs); from source, ajv compiles the same schemas
// at run time. The two must say the same thing: the CLI's diagnostics for a config with an error
// of every kind compiler/schema.ts words (unknown field, missing field, a field needing another,
// wrong type, several forms, a format, a pattern, an enum, a minimum) equal the in-process compile's.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, test } from 'node:test';
import { CLI, mtlsgate } from './helpers/cli.ts';
import { compileDir } from './helpers/compile-and-load.ts';

const dir = mkdtempSync(join(tmpdir(), 'mtlsgate-schema-precompiled-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const FILES: Record<string, string> = {
  'apis/a.yaml': `kind: api
id: a
domain: "not a host name!"
listen_port: 8443
proxy:
  listen_path: a/
  target_url: ftp://127.0.0.1:9
  strip_listen_pathh: true
use_keyless: "true"
`,
  'apis/b.yaml': `kind: api
id: B_b
proxy:
  listen_path: /b/
`,
  'keys/k.yaml': `kind: key
id: k
rate: 10
token_sha256: xyz
expires: yesterday
is_inactive: 1
`,
  'policies/p.yaml': `kind: policy
id: p
per: 60
on_limiter_error: allow
`,
  'policies/q.yaml': `kind: policy
id: q
rate: 5
per: "every minute"
quota_max: 1.5
`,
};

test('the CLI (validators compiled at build time) reports every schema error as the in-process compile (ajv at run time) does', async () => {
  for (const [name, text] of Object.entries(FILES)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  const inProcess = await compileDir(dir);
  const cli = mtlsgate(['check', dir, '--format', 'json']);
  assert.equal(cli.code, 1, cli.stderr);
  // The CLI names files as given on its command line (here absolute); compileDir relative to DIR.
  const fromCli = (JSON.parse(cli.stdout) as { diagnostics: Array<{ file: string }> }).diagnostics.map((d) => ({ ...d, file: relative(dir, d.file) }));
  const seen = (ds: unknown[]) => ds.map((d) => JSON.stringify(d));
  assert.deepEqual(seen(fromCli), seen(inProcess.diagnostics));
  // Every kind of wording above is in there (the comparison is not of two empty lists).
  const codes = new Set(inProcess.diagnostics.map((d) => d.code));
  for (const code of ['E_UNKNOWN_FIELD', 'E_MISSING_FIELD', 'E_FIELD_TYPE', 'E_FIELD_VALUE']) assert.ok(codes.has(code), `${code} in ${[...codes]}`);
  assert.ok(inProcess.diagnostics.length >= 12, JSON.stringify(inProcess.diagnostics, null, 1));
});

test('dist/mtlsgate.mjs holds the precompiled validators of every kind', () => {
  assert.match(readFileSync(CLI, 'utf8'), /precompiled = \{ api, policy, key, revocation, test \}/);
});
