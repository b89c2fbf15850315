// Re-renders bench/RESULTS.md and bench/README-PERF-SNIPPET.md from bench/results.json (e.g.
// after a change to the report's wording), without measuring anything again.
// Usage: node --import tsx bench/render.ts [results.json]
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderPerfSnippet, renderReport, type BenchResults } from './report.ts';

const here = dirname(fileURLToPath(import.meta.url));
const file = resolve(process.argv[2] ?? join(here, 'results.json'));
const results = JSON.parse(readFileSync(file, 'utf8')) as BenchResults;
writeFileSync(join(here, 'RESULTS.md'), renderReport(results));
writeFileSync(join(here, 'README-PERF-SNIPPET.md'), renderPerfSnippet(results));
console.log(`rendered bench/RESULTS.md and bench/README-PERF-SNIPPET.md from ${file}`);
