// The fast YAML front end must read exactly what the `yaml` library reads (values and
// positions), and hand anything outside its subset to the library.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseFast } from '../compiler/yaml-fast.ts';
import { parseWithYamlLibrary } from '../compiler/parse.ts';
import { DiagnosticLog } from '../compiler/diagnostics.ts';
import type { SourceFile } from '../compiler/source.ts';

const SUBSET = [
  'kind: api\nid: x\nproxy:\n  listen_path: /x/\n  target_url: http://127.0.0.1:9000\n',
  "# comment\nkind: key   # trailing\nid: \"quoted\"\nname: 'it''s'\nexpires: 2027-01-01T00:00:00Z\n",
  'a: 1\nb: -2\nc: 1.5\nd: 0x1f\ne: 0o17\nf: .inf\ng: ~\nh: null\ni: true\nj: False\nk: 1e3\nl: 1.2.3\nm: +7\nn: 007\n',
  'list:\n- a\n- b\nnested:\n  - x\n  -   y\n',
  'access_rights:\n  payments:\n    allowed_urls:\n      - url: ^/charges(/|$)\n        methods: [GET, post]\n      - url: ^/a#b\n  other: {}\n',
  'flow: [a, b,]\nempty: []\nobj: {  }\nnums: [1, 2.5, true, null]\n',
  'pem: |\n  -----BEGIN CERTIFICATE-----\n  AAAA\n  -----END CERTIFICATE-----\nnext: 1\n',
  'strip: |-\n  line1\n\n  line2\n\nkeep: |+\n  a\n\nafter: x\n',
  'kind: key\nid: a\n---\nkind: key\nid: b\n---\n',
  '---\n# only comments\n---\nk: v\r\nw: x\r\n',
  'x:\n  - - a\n    - b\n  - c: 1\n    d: 2\n',
  'empty_value:\nnext: 1\nseq_of_null:\n  -\n  - a\n',
  '123: numeric key\nurl: http://x:80/y\n',
  'a: |\nb: 1\n',
  'a:   spaced   \nk  : v\nc: x # comment\nd: "q" # c\ne: \'s\'  \nf: -1\n',
  'list:\n  - |\n    line\n  - b\n',
  'k: v\n\n\n# trailing comment\n',
  'kind: #only a comment\nid: \t\nname:   \nv: \tx\n',
  'keep: |+\n  a\n\n',
  'seq:\n  - \n  - # c\n',
];

const UNSUPPORTED = [
  'a: &anchor 1\nb: *anchor\n',
  'a: !!str 1\n',
  'folded: >\n  text\n',
  'multi: line one\n  line two\n',
  'quoted: "esc\\n"\n',
  'a: b: c\n',
  '\tkey: tab\n',
  '%YAML 1.2\n---\na: 1\n',
  'a: [x, [y]]\n',
  '? complex\n: key\n',
  'a: |+#\n  x\n',
  'a: x\rb: y\n',
];

function file(text: string): SourceFile {
  return { path: 't.yaml', absPath: '/t.yaml', text };
}

for (const text of SUBSET) {
  test(`fast parser matches yaml: ${JSON.stringify(text.slice(0, 40))}`, () => {
    const fast = parseFast(text);
    assert.ok(fast, 'inside the subset, the fast parser answers');
    const log = new DiagnosticLog(false);
    const full = parseWithYamlLibrary(file(text), log);
    assert.deepEqual(log.diagnostics, []);
    assert.deepEqual(fast, full);
  });
}

for (const text of UNSUPPORTED) {
  test(`fast parser hands over: ${JSON.stringify(text.slice(0, 30))}`, () => {
    assert.equal(parseFast(text), null);
  });
}

test('the example config is read by the fast parser, exactly as yaml reads it', () => {
  const root = join(import.meta.dirname, '..', 'examples');
  const files = readdirSync(root, { recursive: true, encoding: 'utf8' }).filter((f) => /\.ya?ml$/.test(f) && !f.startsWith('.') && !f.includes('portal'));
  assert.ok(files.length > 0);
  for (const f of files) {
    const text = readFileSync(join(root, f), 'utf8');
    const fast = parseFast(text);
    assert.ok(fast, `${f} falls back to the slow parser`);
    assert.deepEqual(fast, parseWithYamlLibrary(file(text), new DiagnosticLog(false)), f);
  }
});

// Mutations of config-like text: wherever the fast parser answers, yaml must read the same
// (and find no error). A fixed seed keeps the run reproducible.
test('fuzz: the fast parser never disagrees with yaml', () => {
  const seeds = [
    'kind: api\nid: x\nproxy:\n  listen_path: /x/\n  target_url: http://127.0.0.1:9000\nclient_certificates:\n  - a.pem\n  - sha256:ab\n',
    'access_rights:\n  payments:\n    allowed_urls:\n      - url: ^/charges(/|$)\n        methods: [GET, post]\n  other: {}\nrate: 1\n',
    'pem: |\n  -----BEGIN CERTIFICATE-----\n  AAAA\n  -----END CERTIFICATE-----\nnext: 1\n---\nk: v # c\n',
    'a: \'x\'\nb: "y"\nc: [1, 2]\nd:\n- e\n- f: g\n  h: i\n',
    'strip: |-\n  line1\n\n  line2\n\nkeep: |+\n  a\n\nafter: x\n',
    'x:\n  - - a\n    - b\n  - c: 1\n    d: 2\n',
    'list:\n  - |\n    line\n  - b\nempty:\nseq:\n  -\n  - a\n',
  ];
  const pieces = [' ', ':', '-', '#', '\n', '"', "'", '|', 'a', '[', ']', ',', '{', '}', '  ', '- ', ': ', '---\n', '\t', '1', '~', '!', '&', '*', '>', '\r'];
  let state = 20261129;
  const rnd = (n: number) => {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    return state % n;
  };
  let answered = 0;
  for (let i = 0; i < 15_000; i++) {
    let t = seeds[rnd(seeds.length)];
    for (let m = 1 + rnd(3); m > 0; m--) {
      const at = rnd(t.length + 1);
      const op = rnd(3);
      const piece = pieces[rnd(pieces.length)];
      t = op === 0 ? t.slice(0, at) + piece + t.slice(at) : op === 1 ? t.slice(0, at) + t.slice(at + 1 + rnd(3)) : t.slice(0, at) + piece + t.slice(at + 1);
    }
    const fast = parseFast(t);
    if (!fast) continue;
    answered++;
    const log = new DiagnosticLog(false);
    const full = parseWithYamlLibrary(file(t), log);
    assert.deepEqual(log.diagnostics, [], `fast parser accepted what yaml rejects: ${JSON.stringify(t)}`);
    assert.deepEqual(fast, full, JSON.stringify(t));
  }
  assert.ok(answered > 1000, `the fast parser answered only ${answered} times`);
});
