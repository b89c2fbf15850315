// The user reference in docs/ stands on its own and stays true: docs/config.md and docs/cli.md
// are exactly what scripts/gen-docs.ts renders from schema/*.schema.json and the built CLI's
// help, every schema field has a description, and README.md and docs/*.md link only to files
// that exist inside the repository.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { GENERATED, renderConfigDocs } from '../scripts/gen-docs.ts';

const ROOT = join(import.meta.dirname, '..');

test('every field in schema/*.schema.json has a description', () => {
  assert.deepEqual(renderConfigDocs().undescribed, []);
});

for (const [file, render] of Object.entries(GENERATED)) {
  test(`${file} is generated from its source and up to date (npm run docs)`, async () => {
    const onDisk = existsSync(join(ROOT, file)) ? readFileSync(join(ROOT, file), 'utf8') : '';
    assert.ok(onDisk === (await render()), `${file} is out of step with its source: run \`npm run docs\` and commit the result`);
  });
}

test('README.md and docs/*.md link only to files inside the repository that exist', () => {
  const pages = [
    'README.md',
    ...readdirSync(join(ROOT, 'docs'))
      .filter((f) => f.endsWith('.md'))
      .map((f) => `docs/${f}`),
  ];
  const broken: string[] = [];
  for (const page of pages) {
    const text = readFileSync(join(ROOT, page), 'utf8').replace(/```[\s\S]*?```/g, '');
    for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = m[1].split('#')[0];
      if (target === '' || /^[a-z]+:/i.test(m[1])) continue; // in-page anchor, or an absolute URL
      const abs = resolve(dirname(join(ROOT, page)), target);
      if (relative(ROOT, abs).startsWith('..')) broken.push(`${page}: ${m[1]} leaves the repository`);
      else if (!existsSync(abs)) broken.push(`${page}: ${m[1]} does not exist`);
    }
  }
  assert.deepEqual(broken, []);
});

test('README links the user reference: config, CLI, errors, diagnostics, the request path', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const requestPath = readdirSync(join(ROOT, 'docs')).find((f) => readFileSync(join(ROOT, 'docs', f), 'utf8').startsWith("# The gateway's request path"));
  assert.ok(requestPath, 'a docs page titled "The gateway\'s request path"');
  for (const page of ['docs/config.md', 'docs/cli.md', 'docs/errors.md', 'docs/diagnostics.md', `docs/${requestPath}`]) {
    assert.ok(readme.includes(`](${page})`), `README.md links ${page}`);
  }
});
