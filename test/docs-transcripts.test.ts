// What the docs say a command prints is what it prints. Every fenced block of README.md and
// docs/*.md that is a terminal transcript (its first line starts with "$ ") is run here, as a
// reader would run it from a checkout where `npm start` has made the demo certificates and
// .demo/bundle.json: each "$ COMMAND" in bash, `mtlsgate` on PATH, stdout and stderr together
// as a terminal shows them, and the lines after it compared with what it printed. The parts
// that differ on every machine are masked on both sides (fingerprints, which the demo's fresh
// certificates change; timestamps); a line "..." stands for any number of lines the page leaves
// out. A block needing another state of the examples names it in an HTML comment just above it
// (`<!-- transcript: NAME -->`, NAME one of SETUPS below). Fenced `yaml` documents with a `kind`
// are validated against the schema the compiler uses, so a renamed field cannot survive there.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { loadBundle } from '../bundle/read.ts';
import { demoSteps } from '../cli/demo-guide.ts';
import { writeDemoPki } from '../cli/pki.ts';
import { KINDS, type Kind, validatorOf } from '../compiler/schema.ts';
import { CLI, ensureBuilt, ROOT } from './helpers/cli.ts';
import { tempDir } from './helpers/ops-fixtures.ts';

const PAGES = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

/** States of the examples a transcript may ask for; each returns the undo. */
const SETUPS: Record<string, (examples: string) => () => void> = {
  'mallory pinned on partner-reports': (examples) => {
    const file = join(examples, 'apis', 'partner-reports.yaml');
    const before = readFileSync(file, 'utf8');
    appendFileSync(file, '  - ../certs/mallory.pem\n');
    return () => writeFileSync(file, before);
  },
};

interface Block {
  page: string;
  line: number;
  lang: string;
  text: string;
  setup?: string;
}

function fencedBlocks(page: string): Block[] {
  const lines = readFileSync(join(ROOT, page), 'utf8').split('\n');
  const out: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*$/.exec(lines[i]);
    if (!open) continue;
    const end = lines.indexOf('```', i + 1);
    assert.ok(end > i, `${page}:${i + 1}: a fenced block that is never closed`);
    const setup = /^<!-- transcript: (.+?) -->$/.exec(lines[i - 1] ?? '')?.[1];
    out.push({ page, line: i + 1, lang: open[1], text: lines.slice(i + 1, end).join('\n'), setup });
    i = end;
  }
  return out;
}

const blocks = PAGES.flatMap(fencedBlocks);
const transcripts = blocks.filter((b) => b.lang === '' && b.text.startsWith('$ '));

/** What changes from machine to machine and run to run, masked the same way on both sides. */
function mask(text: string, dir: string): string {
  return text
    .replaceAll(`${dir}/`, '/')
    .replace(/sha256:[0-9a-f]{8,64}…?/g, 'sha256:<fingerprint>')
    .replace(/\b[0-9a-f]{64}\b/g, '<hex>')
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/g, '<time>')
    .replace(/[ \t]+$/gm, '');
}

/** Does `actual` match `expected`, where an expected line "..." matches any run of lines? */
function matches(expected: string[], actual: string[]): boolean {
  const memo = new Map<string, boolean>();
  const at = (e: number, a: number): boolean => {
    const k = `${e},${a}`;
    const known = memo.get(k);
    if (known !== undefined) return known;
    let r: boolean;
    if (e === expected.length) r = a === actual.length;
    else if (expected[e].trim() === '...') r = at(e + 1, a) || (a < actual.length && at(e, a + 1));
    else r = a < actual.length && expected[e] === actual[a] && at(e + 1, a + 1);
    memo.set(k, r);
    return r;
  };
  return at(0, 0);
}

/** The "$ " commands of a transcript, each with the lines the page shows it printing. */
function steps(text: string): { command: string; shown: string }[] {
  return text
    .split(/^\$ /m)
    .slice(1)
    .map((part) => {
      const [command, ...shown] = part.replace(/\n$/, '').split('\n');
      // A blank line before the next "$ " separates the commands on the page; it is not output.
      return { command, shown: shown.join('\n').replace(/\n+$/, '') };
    });
}

const t = tempDir('docs-transcripts');
// The reader's checkout: the examples (with the demo certificates `npm start` writes), the Tyk
// fixtures the README imports, the demo bundle; /tmp/ in a command is this directory's tmp/.
const checkout = join(t.dir, 'checkout');
const bin = join(t.dir, 'bin');
before(async () => {
  ensureBuilt();
  const examples = join(ROOT, 'examples');
  cpSync(examples, join(checkout, 'examples'), {
    recursive: true,
    filter: (src) => !/^(certs|keys[/\\]portal)([/\\]|$)/.test(relative(examples, src)),
  });
  await writeDemoPki(join(checkout, 'examples', 'certs'));
  cpSync(join(ROOT, 'test', 'fixtures', 'tyk'), join(checkout, 'test', 'fixtures', 'tyk'), { recursive: true });
  mkdirSync(bin);
  mkdirSync(join(t.dir, 'tmp'));
  mkdirSync(join(checkout, '.demo'));
  symlinkSync(CLI, join(bin, 'mtlsgate'));
  const compiled = spawnSync(CLI, ['compile', 'examples', '-o', '.demo/bundle.json', '-q'], { cwd: checkout, encoding: 'utf8' });
  assert.equal(compiled.status, 0, compiled.stderr);
});
after(() => t.cleanup());

test('the docs hold transcripts to check, and every transcript setup they name exists', () => {
  assert.ok(transcripts.length >= 8, `found ${transcripts.length} transcripts`);
  for (const b of transcripts) if (b.setup) assert.ok(b.setup in SETUPS, `${b.page}:${b.line}: unknown transcript setup "${b.setup}"`);
});

test('every transcript in README.md and docs/*.md prints what the page shows', () => {
  const env = {
    ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MTLSGATE_'))),
    PATH: `${bin}:${process.env.PATH}`,
    NO_COLOR: '1',
  };
  const failures: string[] = [];
  for (const b of transcripts) {
    const undo = b.setup ? SETUPS[b.setup](join(checkout, 'examples')) : () => {};
    try {
      for (const { command, shown } of steps(b.text)) {
        const run = command.replaceAll('/tmp/', `${t.dir}/tmp/`);
        const r = spawnSync('bash', ['-c', `${run} 2>&1`], { cwd: checkout, env, encoding: 'utf8', timeout: 60_000 });
        const printed = mask(r.stdout.replace(/\n$/, ''), t.dir);
        const expected = mask(shown, t.dir);
        if (!matches(expected.split('\n'), printed.split('\n'))) {
          failures.push(`${b.page}:${b.line}: $ ${command}\n--- the page shows\n${expected}\n--- it prints\n${printed}`);
        }
      }
    } finally {
      undo();
    }
  }
  assert.deepEqual(failures, []);
});

test('the transcript matcher: "..." skips any run of lines, nothing else is skipped', () => {
  assert.ok(matches(['a', '...', 'd'], ['a', 'b', 'c', 'd']));
  assert.ok(matches(['a', '...', 'b'], ['a', 'b']));
  assert.ok(!matches(['a', 'd'], ['a', 'b', 'd']));
  assert.ok(!matches(['a'], ['a', 'extra']));
  assert.equal(mask('sha256:6f5963100134b77f… and 2029-03-06T22:42:02.000Z ', '/x'), 'sha256:<fingerprint> and <time>');
});

test('every fenced yaml document with a kind in README.md and docs/*.md is valid against its schema', () => {
  const failures: string[] = [];
  let checked = 0;
  for (const b of blocks.filter((x) => x.lang === 'yaml')) {
    for (const doc of parseAllDocuments(b.text)) {
      if (doc.errors.length > 0) {
        failures.push(`${b.page}:${b.line}: ${doc.errors[0].message}`);
        continue;
      }
      const value = doc.toJS() as { kind?: string } | null;
      const kind = value?.kind as Kind;
      if (!KINDS.includes(kind)) continue;
      const validate = validatorOf(kind);
      checked++;
      if (!validate(value)) {
        const e = validate.errors?.[0];
        failures.push(`${b.page}:${b.line}: kind ${kind}: ${e?.instancePath || '/'} ${e?.message} ${JSON.stringify(e?.params)}`);
      }
    }
  }
  assert.ok(checked >= 8, `checked ${checked} documents`);
  assert.deepEqual(failures, []);
});

test("README's curl commands are ones `npm start` prints, with the answers it says they get", () => {
  const readme = blocks.find((b) => b.page === 'README.md' && b.lang === 'sh' && b.text.includes('curl --cacert'));
  assert.ok(readme, 'README.md has the block of demo curl commands');
  const bundleFile = join(checkout, '.demo', 'bundle.json');
  const steps = demoSteps({
    gatewayUrl: 'https://127.0.0.1:8443',
    adminUrl: 'http://127.0.0.1:9901',
    configDir: join(checkout, 'examples'),
    certsDir: join(checkout, 'examples', 'certs'),
    bundleFile,
    content: loadBundle(readFileSync(bundleFile)).content,
    upstreams: [],
  }).map((s) => ({ ...s, command: s.command.replaceAll(`${checkout}/`, '').replace(' -sS', '').replace(` -w '\\nHTTP %{http_code}\\n'`, '') }));
  const lines = readme.text.split('\n');
  let shown = 0;
  for (let i = 0; i < lines.length; i++) {
    const said = /-> (\d{3})(?: (\{.*\}))?$/.exec(lines[i]);
    if (!said) continue;
    const command = lines[i + 1];
    const step = steps.find((s) => s.command === command);
    assert.ok(step, `README.md:${readme.line + i + 2}: \`${command}\` is not among the demo's commands:\n${steps.map((s) => s.command).join('\n')}`);
    assert.equal(step.status, Number(said[1]), command);
    assert.equal(step.code, said[2] ? JSON.parse(said[2]).code : null, command);
    shown++;
  }
  assert.equal(shown, 4);
});
