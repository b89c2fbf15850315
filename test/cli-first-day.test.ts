// A platform engineer's first day, through the built CLI: what README.md and the docs promise
// holds when followed to the letter. Each case is something a new user ran into: a completion
// or did-you-mean offering a flag the command then refuses, `mtlsgate test` on a fresh clone
// not saying the demo certificates are missing, "-" creating a directory named "-", explain
// and who not reading "-" from standard input, and docs naming a duration flag in milliseconds.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBuilt, mtlsgate, mtlsgateAsync, ROOT } from './helpers/cli.ts';
import { compileWithCli, demoPki } from './helpers/serve-fixtures.ts';
import { loadCommands } from '../cli/registry.ts';

const commands = await loadCommands();
let tmp: string;
let examples: string;
let bundle: string;
before(async () => {
  ensureBuilt();
  tmp = mkdtempSync(join(tmpdir(), 'mtlsgate-first-day-'));
  examples = join(tmp, 'examples');
  cpSync(join(ROOT, 'examples'), examples, { recursive: true, filter: (src) => !src.includes(join('examples', 'certs')) && !src.includes('portal') });
  await demoPki(examples);
  bundle = join(tmp, 'bundle.json');
  await compileWithCli(examples, bundle);
});
after(() => rmSync(tmp, { recursive: true, force: true }));

/** The flags `mtlsgate completion bash` offers each command: its `CMD) words="..."` lines. */
function completedFlags(): Map<string, string[]> {
  const script = mtlsgate(['completion', 'bash']).stdout;
  const out = new Map<string, string[]>();
  for (const m of script.matchAll(/^ {6}([a-z]+)\) words="([^"]*)" ;;$/gm)) out.set(m[1], m[2].split(' ').filter(Boolean));
  return out;
}

/**
 * The probe's first guess at a flag's form: "--sign=x" where `cmd`'s usage text shows it with a
 * value ("--sign KEYFILE", "[--shards N|auto]"), else bare ("--strict", "--json"). Only a guess:
 * the command's own answer corrects it, so a usage text that is wrong costs one more run, no more.
 */
function firstGuess(cmd: string, flag: string): string {
  const usage = commands.find((c) => c.name === cmd)?.usage ?? '';
  return new RegExp(`(?<![\\w-])${flag}[ =][^\\s\\]]`).test(usage) ? `${flag}=x` : flag;
}

/**
 * The flags of `flags` that `cmd` refuses. "CMD --a=x --b ... --zz-not-a-flag": parsing always
 * stops with an error (nothing runs) at the first flag it does not take, at a boolean given a
 * value (then given again without one) or at a flag given none that needs one (then given "=x"),
 * so a run ending at --zz-not-a-flag took every flag before. Each run corrects one guess.
 */
async function refusedFlags(cmd: string, flags: string[]): Promise<string[]> {
  const prefix = cmd === 'import' ? [cmd, 'tyk'] : [cmd];
  let args = flags.map((f) => firstGuess(cmd, f));
  const refused: string[] = [];
  for (let round = 0; round <= 2 * flags.length; round++) {
    const r = await mtlsgateAsync([...prefix, ...args, '--zz-not-a-flag'], { cwd: tmp });
    const unknown = /unknown flag (--[a-z0-9-]+)/.exec(r.stderr)?.[1];
    if (unknown === '--zz-not-a-flag') return refused;
    if (unknown !== undefined) {
      refused.push(unknown);
      args = args.filter((a) => a !== unknown && a !== `${unknown}=x`);
      continue;
    }
    const boolean = /(--[a-z0-9-]+) takes no value/.exec(r.stderr)?.[1];
    const valued = /(--[a-z0-9-]+) needs a value/.exec(r.stderr)?.[1];
    assert.ok(boolean !== undefined || valued !== undefined, `${cmd}: ${r.stderr}`);
    args = args.map((a) => (boolean !== undefined && a === `${boolean}=x` ? boolean : a === valued ? `${a}=x` : a));
  }
  assert.fail(`${cmd}: no end to the probe`);
}

test('completion and did-you-mean offer only flags the command takes (not those its help mentions for another command)', async () => {
  const flags = completedFlags();
  assert.ok(flags.size >= 15, `a flag list per command: ${[...flags.keys()]}`);
  const own = (list: string[]) => list.filter((f) => !['--help', '--quiet', '--verbose'].includes(f));
  const probed = [...flags].filter(([, list]) => own(list).length > 0); // help has none of its own
  const refused = await Promise.all(probed.map(async ([cmd, list]) => (await refusedFlags(cmd, own(list))).map((f) => `${cmd} ${f}`)));
  assert.deepEqual(refused.flat(), [], 'offered by completion, refused by the command');
  // Every command with --format takes --json, its alias: completion offers it too.
  for (const [cmd, list] of flags) if (list.includes('--format')) assert.ok(list.includes('--json'), `${cmd} completes --json`);
  // keygen's help says "sign with compile --sign"; certs's "(for serve --tls-cert)": neither is theirs.
  assert.doesNotMatch(mtlsgate(['keygen', 'k', '--sig']).stderr, /did you mean/);
  assert.doesNotMatch(mtlsgate(['certs', 'pki', '--tls-crt', 'x']).stderr, /did you mean/);
  assert.match(mtlsgate(['serve', '--tls-crt', 'x']).stderr, /did you mean --tls-cert\?/, 'serve still suggests its own');
});

test('mtlsgate test on a fresh clone: the first line says the demo certificates are missing, as check and compile say', () => {
  const fresh = join(tmp, 'fresh');
  cpSync(examples, join(fresh, 'examples'), { recursive: true, filter: (src) => !src.includes(join('examples', 'certs')) });
  const check = mtlsgate(['check', 'examples'], { cwd: fresh });
  const t = mtlsgate(['test', 'examples'], { cwd: fresh });
  assert.equal(t.code, 1);
  const hint =
    'hint: examples/certs does not exist (6 certificate files the config names): they are the demo certificates; run `npm start` or `mtlsgate certs examples/certs` first';
  assert.equal(check.stderr.split('\n')[0], hint);
  assert.equal(t.stderr.split('\n')[0], hint);
  assert.match(t.stderr, /mtlsgate test: the config has errors; no test ran/);
});

test('"-" where a command writes a directory or two files is refused with what to give; nothing named "-" is written', () => {
  const cwd = join(tmp, 'dash');
  mkdirSync(cwd);
  const tyk = join(ROOT, 'test', 'fixtures', 'tyk', 'apps', 'logistics.json');
  const runs = {
    import: mtlsgate(['import', 'tyk', tyk, '-o', '-'], { cwd }),
    keygen: mtlsgate(['keygen', '-'], { cwd }),
    certs: mtlsgate(['certs', '-'], { cwd }),
  };
  for (const [cmd, r] of Object.entries(runs)) {
    assert.equal(r.code, 2, `${cmd}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`^mtlsgate ${cmd}: "-" would be standard output, but this command writes .+: give `), cmd);
  }
  assert.match(runs.import.stderr, /give a new or empty directory: -o OUT_DIR/);
  assert.deepEqual(readdirSync(cwd), [], 'no "-", "-.key" or "-.pub"');
  const json = mtlsgate(['import', 'tyk', tyk, '-o', '-', '--format', 'json'], { cwd });
  assert.equal(JSON.parse(json.stdout).errors[0].code, 'usage');
});

test('explain and who read "-" from standard input (--bundle, --cert); who names the flag of a file it cannot read', () => {
  const bytes = readFileSync(bundle);
  const alice = readFileSync(join(examples, 'certs', 'alice.pem'));
  const fromFile = mtlsgate(['explain', '--bundle', bundle, '--cert', join(examples, 'certs', 'alice.pem'), '/profile/me']);
  assert.equal(fromFile.code, 0, fromFile.stderr);
  const certIn = mtlsgate(['explain', '--bundle', bundle, '--cert', '-', '/profile/me'], { input: alice });
  assert.equal(certIn.code, 0, certIn.stderr);
  assert.equal(certIn.stdout.split('\n')[0], fromFile.stdout.split('\n')[0]);
  assert.match(certIn.stdout, /key "alice", identified by certificate/);
  const bundleIn = mtlsgate(['explain', '--bundle', '-', '--cert', join(examples, 'certs', 'alice.pem'), '/profile/me'], { input: bytes });
  assert.equal(bundleIn.code, 0, bundleIn.stderr);
  assert.equal(bundleIn.stdout.split('\n')[0], fromFile.stdout.split('\n')[0]);
  const both = mtlsgate(['explain', '--bundle', '-', '--cert', '-', '/profile/me'], { input: bytes });
  assert.equal(both.code, 2);
  assert.match(both.stderr, /standard input holds one of them/);

  const whoFile = mtlsgate(['who', '--bundle', bundle, 'profile']);
  const whoIn = mtlsgate(['who', '--bundle', '-', 'profile'], { input: bytes });
  assert.equal(whoIn.code, 0, whoIn.stderr);
  assert.equal(whoIn.stdout, whoFile.stdout);

  const missing = mtlsgate(['who', '--bundle', join(tmp, 'nope.json'), 'profile']);
  assert.equal(missing.code, 2);
  assert.equal(missing.stderr, `mtlsgate who: --bundle ${join(tmp, 'nope.json')}: ENOENT\n`);
  const notDir = mtlsgate(['who', '--bundle', bundle, 'profile', '--certs', join(examples, 'certs', 'alice.pem')]);
  assert.equal(notDir.code, 2);
  assert.match(notDir.stderr, /^mtlsgate who: --certs \S+alice\.pem: not a directory \(give the directory holding the client certificates/);
});

test('completion names an unsupported shell; a unitless duration of 1 reads "1 second"', () => {
  const fish = mtlsgate(['completion', 'fish']);
  assert.equal(fish.code, 2);
  assert.match(fish.stderr, /^mtlsgate completion: no completion for "fish": only bash and zsh/);
  const one = mtlsgate(['serve', '--bundle', 'b.json', '--tls-cert', 'c.pem', '--tls-key', 'k.pem', '--drain-timeout', '1']);
  assert.match(one.stderr, /--drain-timeout "1" has no unit: write 1s for 1 second \(or 1000ms\)/);
});

test('README.md and docs/*.md write every serve duration flag with a unit, never in milliseconds', () => {
  const help = mtlsgate(['help', 'serve']).stdout;
  const durationFlags = [...help.matchAll(/^ {2}(--[a-z0-9-]+) DURATION\b/gm)].map((m) => m[1]);
  assert.ok(durationFlags.includes('--crl-refresh') && durationFlags.length >= 8, durationFlags.join(' '));
  const pages = ['README.md', ...readdirSync(join(ROOT, 'docs')).map((f) => `docs/${f}`)].filter((p) => p.endsWith('.md') && existsSync(join(ROOT, p)));
  const wrong: string[] = [];
  for (const page of pages) {
    const lines = readFileSync(join(ROOT, page), 'utf8').split('\n');
    lines.forEach((line, i) => {
      for (const flag of durationFlags) {
        // "--crl-refresh MS", "`--crl-refresh` ms", "--drain-timeout 10": what serve refuses.
        if (new RegExp(`${flag}\`?\\]?\\s+(MS\\b|ms\\b|\\d+(?![\\d.]*(ms|s|m|h)\\b))`).test(line)) wrong.push(`${page}:${i + 1}: ${flag}`);
      }
    });
  }
  assert.deepEqual(wrong, []);
});

test("every flag the quickstart's commands use is on that command's usage line (the line every usage error shows)", () => {
  const quickstart = readFileSync(join(ROOT, 'docs', 'quickstart.md'), 'utf8');
  const missing: string[] = [];
  let seen = 0;
  for (const block of quickstart.matchAll(/```sh\n([\s\S]*?)```/g)) {
    for (const m of block[1].matchAll(/^mtlsgate ([a-z]+)\b(.*)$/gm)) {
      const synopsis = mtlsgate(['help', m[1]]).stdout.split('\n')[0];
      if (synopsis.includes('[options]')) continue; // serve: the usage line names only what it requires
      for (const flag of m[2].replace(/#.*/, '').match(/--[a-z][a-z0-9-]*/g) ?? []) {
        seen++;
        if (!synopsis.includes(flag)) missing.push(`mtlsgate ${m[1]} ${flag}`);
      }
    }
  }
  assert.ok(seen >= 5, `the quickstart's commands: ${seen} flags`);
  assert.deepEqual(missing, []);
});

test("the conventions' durations row names every serve flag that takes a DURATION", () => {
  const help = mtlsgate(['help', 'serve']).stdout;
  const durationFlags = [...help.matchAll(/^ {2}(--[a-z0-9-]+) DURATION\b/gm)].map((m) => m[1]);
  const row = readFileSync(join(ROOT, 'docs', 'cli-conventions.md'), 'utf8')
    .split('\n')
    .find((l) => l.startsWith('| durations |'));
  assert.ok(row, 'a durations row');
  const unnamed = durationFlags.filter((f) => !row.includes(`\`${f}\``) && !(f.endsWith('-timeout') && row.includes('`--*-timeout`')));
  assert.deepEqual(unnamed, []);
});

test('what the docs say `check examples` prints is what it prints: the JSON envelope of cli-conventions.md, the counts of examples/README.md', () => {
  const real = JSON.parse(mtlsgate(['check', examples, '--format', 'json']).stdout);
  const doc = readFileSync(join(ROOT, 'docs', 'cli-conventions.md'), 'utf8');
  const shown = JSON.parse(/## JSON output[\s\S]*?```json\n([\s\S]*?)```/.exec(doc)![1].replace('sha256:…', 'x'));
  assert.deepEqual(Object.keys(shown), Object.keys(real), 'the same fields, in order');
  assert.deepEqual(shown.counts, real.counts);
  const words: Record<string, number> = { one: 1, two: 2, three: 3, four: 4, five: 5, six: 6 };
  const readme = readFileSync(join(ROOT, 'examples', 'README.md'), 'utf8').replace(/\s+/g, ' ');
  const said = (noun: string) => words[new RegExp(`\\b(${Object.keys(words).join('|')}) ${noun}\\b`).exec(readme)?.[1] ?? ''];
  assert.equal(said('APIs'), real.counts.apis);
  assert.equal(said('keys'), real.counts.keys);
  assert.equal(said('policies'), readdirSync(join(examples, 'policies')).length);
});

test('serve says what is wrong with a TLS pair in plain words: swapped files, a key given twice, a key of another certificate', () => {
  const pem = (name: string) => join(examples, 'certs', `${name}.pem`);
  const start = (cert: string, key: string) =>
    mtlsgate(['serve', '--bundle', bundle, '--tls-cert', cert, '--tls-key', key, '--listen', '127.0.0.1:0', '--admin', 'off']);
  const cases: Array<[string, string, RegExp]> = [
    [pem('server-key'), pem('server'), /the two are swapped: the certificate file holds the private key, the key file the certificate$/],
    [pem('server-key'), pem('server-key'), /the certificate file holds no PEM certificate \(it holds a private key\)$/],
    [pem('server'), pem('server'), /the key file holds no private key \(it holds a certificate\)$/],
    [pem('server'), pem('alice-key'), /the private key is not the certificate's \(key values mismatch\)$/],
  ];
  for (const [cert, key, why] of cases) {
    const r = start(cert, key);
    assert.equal(r.code, 2, r.stderr);
    const line = r.stderr.trimEnd().split('\n').at(-1)!;
    assert.ok(line.startsWith(`mtlsgate serve: --tls-cert ${cert} and --tls-key ${key} are not a usable certificate and matching private key: `), line);
    assert.match(line, why);
  }
});
