// The access tools' inputs through the built CLI (issue 13, session 16): a URL without a host
// is a diagnostic at its position (`test`, `check`) or a usage error (`explain`), never the
// whole run aborted as an I/O error; `as_key` and `who` name own keys and APIs only (not
// "constructor"); `mtlsgate test -` reads one YAML stream from standard input, as `check -`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBuilt, mtlsgate } from './helpers/cli.ts';

const APIS = `kind: api
id: open
proxy: {listen_path: /open, target_url: "http://127.0.0.1:9"}
use_keyless: true
---
kind: api
id: tokened
proxy: {listen_path: /t, target_url: "http://127.0.0.1:9"}
use_standard_auth: true
`;
const testDoc = (url: string, extra = '') => `kind: test
id: t
cases:
  - request: {url: "/open/x"}
    expect: {status: 200}
  - request: {url: "${url}"${extra}}
    expect: {status: 200}
`;

let tmp: string;
let bundle: string;
before(() => {
  ensureBuilt();
  tmp = mkdtempSync(join(tmpdir(), 'mtlsgate-access-inputs-'));
  mkdirSync(join(tmp, 'cfg'));
  writeFileSync(join(tmp, 'cfg', 'apis.yaml'), APIS);
  bundle = join(tmp, 'bundle.json');
  const r = mtlsgate(['compile', join(tmp, 'cfg'), '-o', bundle]);
  assert.equal(r.code, 0, r.stderr);
});
after(() => rmSync(tmp, { recursive: true, force: true }));

test('test/check: a case URL https:/// (no host) is E_FIELD_VALUE at the url, the run goes on (before: an "io" error, exit 2, no position)', () => {
  const dir = join(tmp, 'nohost');
  mkdirSync(dir);
  writeFileSync(join(dir, 'apis.yaml'), APIS);
  writeFileSync(join(dir, 'tests.yaml'), testDoc('https:///open/x'));
  for (const cmd of ['test', 'check']) {
    const r = mtlsgate([cmd, dir]);
    assert.equal(r.code, 1, `${cmd}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /tests\.yaml:6:20: error E_FIELD_VALUE: cases\[1\]\.request\.url "https:\/\/\/open\/x" is not valid/);
    assert.doesNotMatch(r.stderr, /neither a path/);
  }
  const j = mtlsgate(['test', dir, '--format', 'json']);
  const env = JSON.parse(j.stdout);
  assert.equal(env.errors[0].code, 'E_FIELD_VALUE');
  assert.equal(env.errors[0].line, 6);
});

test('explain: a URL with no host is a usage error (exit 2, code usage), not an I/O error', () => {
  for (const url of ['https://', 'http:///x']) {
    const r = mtlsgate(['explain', '--bundle', bundle, url]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /url "[^"]+" is neither a path \(\/\.\.\.\) nor an http\(s\) URL with a host/);
    assert.match(r.stderr, /^usage: mtlsgate explain/m);
    const j = mtlsgate(['explain', '--bundle', bundle, '--format', 'json', url]);
    assert.equal(JSON.parse(j.stdout).errors[0].code, 'usage');
  }
});

test('explain --as-key constructor and who constructor: no such key or API (before: taken as a key / "nobody", exit 0)', () => {
  for (const name of ['constructor', '__proto__', 'toString']) {
    const e = mtlsgate(['explain', '--bundle', bundle, '--as-key', name, '/t/x']);
    assert.equal(e.code, 2, e.stdout);
    assert.match(e.stderr, new RegExp(`as_key names key "${name}", which is not in the bundle`));
    const w = mtlsgate(['who', '--bundle', bundle, name]);
    assert.equal(w.code, 2, w.stdout);
    assert.match(w.stderr, new RegExp(`no API "${name}" in the bundle \\(it has open, tokened\\)`));
  }
  const dir = join(tmp, 'proto-key');
  mkdirSync(dir);
  writeFileSync(join(dir, 'apis.yaml'), APIS);
  writeFileSync(join(dir, 'tests.yaml'), testDoc('/t/x', ', as_key: constructor'));
  const t = mtlsgate(['test', dir]);
  assert.equal(t.code, 1);
  assert.match(t.stdout, /as_key names key "constructor", which is not in the bundle/);
});

test('test -: one YAML stream on standard input, as check - (before: "config directory - cannot be read", exit 2)', () => {
  const stream = `${APIS}---\n${testDoc('/open/y')}`;
  const r = mtlsgate(['test', '-'], { input: stream });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'ok    t: GET /open/x\nok    t: GET /open/y\n2 passed, 0 failed\n');
  const failing = mtlsgate(['test', '-', '--format', 'json'], { input: `${APIS}---\n${testDoc('/t/x')}` });
  assert.equal(failing.code, 1);
  const env = JSON.parse(failing.stdout);
  assert.deepEqual([env.passed, env.failed, env.cases[1].file, env.cases[1].line], [1, 1, '<stdin>', 16]);
  const empty = mtlsgate(['test', '-'], { input: APIS });
  assert.equal(empty.code, 0);
  assert.match(empty.stderr, /no access tests \(kind: test documents\) in standard input: nothing was tested/);
});
