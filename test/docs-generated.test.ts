// The user reference in docs/ stands on its own and stays true: docs/config.md and docs/cli.md
// are exactly what scripts/gen-docs.ts renders from schema/*.schema.json and the built CLI's
// help, every schema field has a description, and README.md and docs/*.md link only to files
// that exist inside the repository, and to headings (anchors) those files have.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
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

/**
 * GitHub's anchors for a Markdown page's headings: lower-cased, punctuation dropped, spaces as
 * "-", a repeated heading numbered "-1", "-2" (code blocks hold no headings).
 */
function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const m of markdown.replace(/```[\s\S]*?```/g, '').matchAll(/^#{1,6}[ \t]+(.*?)[ \t]*#*[ \t]*$/gm)) {
    const slug = m[1]
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1') // a link in a heading: its text
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\p{M} _-]/gu, '')
      .replace(/ /g, '-');
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    anchors.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return anchors;
}

/** The relative links of `pages` (paths under `root`) whose file, or whose #anchor in it, does not exist. */
function brokenLinks(root: string, pages: string[]): string[] {
  const broken: string[] = [];
  for (const page of pages) {
    const text = readFileSync(join(root, page), 'utf8').replace(/```[\s\S]*?```/g, '');
    for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/i.test(m[1])) continue; // an absolute URL
      const [target, anchor] = m[1].split('#');
      const abs = target === '' ? join(root, page) : resolve(dirname(join(root, page)), target);
      if (relative(root, abs).startsWith('..')) broken.push(`${page}: ${m[1]} leaves the repository`);
      else if (!existsSync(abs)) broken.push(`${page}: ${m[1]} does not exist`);
      else if (anchor !== undefined && abs.endsWith('.md') && !headingAnchors(readFileSync(abs, 'utf8')).has(anchor))
        broken.push(`${page}: ${m[1]}: no heading with that anchor`);
    }
  }
  return broken;
}

test('README.md, docs/*.md and the READMEs they send users to link only to files inside the repository that exist, and to headings those files have', () => {
  const pages = [
    'README.md',
    'portal/README.md',
    'examples/README.md',
    ...readdirSync(join(ROOT, 'docs'))
      .filter((f) => f.endsWith('.md'))
      .map((f) => `docs/${f}`),
  ];
  assert.deepEqual(brokenLinks(ROOT, pages), []);
});

test('the link check finds a missing file, a missing anchor in another page and in its own page', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mtlsgate-links-'));
  try {
    mkdirSync(join(dir, 'docs'));
    writeFileSync(join(dir, 'docs', 'b.md'), '# Page B\n## The `serve` flags: 1, 2\n## Again\n## Again\n');
    const links = ['b.md#page-b', 'b.md#the-serve-flags-1-2', 'b.md#again-1', '#here', 'b.md#gone', 'c.md', '#nowhere'];
    writeFileSync(join(dir, 'docs', 'a.md'), `# Here\n${links.map((l) => `[x](${l})`).join('\n')}\n`);
    assert.deepEqual(brokenLinks(dir, ['docs/a.md']), [
      'docs/a.md: b.md#gone: no heading with that anchor',
      'docs/a.md: c.md does not exist',
      'docs/a.md: #nowhere: no heading with that anchor',
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('README links the user reference: config, CLI, errors, diagnostics, the request path', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const requestPath = readdirSync(join(ROOT, 'docs')).find((f) => readFileSync(join(ROOT, 'docs', f), 'utf8').startsWith("# The gateway's request path"));
  assert.ok(requestPath, 'a docs page titled "The gateway\'s request path"');
  for (const page of ['docs/config.md', 'docs/cli.md', 'docs/errors.md', 'docs/diagnostics.md', `docs/${requestPath}`]) {
    assert.ok(readme.includes(`](${page})`), `README.md links ${page}`);
  }
});
