// docs/diagnostics.md and compiler/codes.ts list the same codes with the same severities.
// (test/compiler-diagnostics.test.ts checks that every code has a case that triggers it.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CODES } from '../compiler/index.ts';

const doc = readFileSync(join(import.meta.dirname, '..', 'docs', 'diagnostics.md'), 'utf8');
const sections = new Map([...doc.matchAll(/^### ([A-Z_]+)\n\n\*\*(error|warning)\*\*: (.+)$/gm)].map((m) => [m[1], { severity: m[2], title: m[3] }]));

test('every code in compiler/codes.ts is documented, and nothing else is', () => {
  assert.deepEqual([...sections.keys()].sort(), Object.keys(CODES).sort());
  assert.equal(doc.match(/^### /gm)?.length, sections.size, 'every ### heading is a code section');
});

test('documented severities and titles match the table', () => {
  for (const [code, info] of Object.entries(CODES)) {
    assert.equal(sections.get(code)?.severity, info.severity, code);
    assert.equal(sections.get(code)?.title, `${info.title}.`, code);
  }
});

test('code names carry their severity (E_ errors, W_ warnings)', () => {
  for (const [code, info] of Object.entries(CODES)) assert.equal(code[0], info.severity === 'error' ? 'E' : 'W', code);
});
