// examples/.github/workflows/mtlsgate-check.yml: its mtlsgate steps, run as written (from the
// repository root, with CONFIG_DIR pointing at a copy of examples/), pass on the examples and
// fail with GitHub annotations on a broken config.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parse } from 'yaml';

const ROOT = join(import.meta.dirname, '..');
const EXAMPLES = join(ROOT, 'examples');
const WORKFLOW = join(EXAMPLES, '.github', 'workflows', 'mtlsgate-check.yml');

interface Step {
  name?: string;
  uses?: string;
  run?: string;
}

/** The workflow's steps that run mtlsgate (installing node and npm ci are the runner's job). */
function mtlsgateSteps(): Step[] {
  const wf = parse(readFileSync(WORKFLOW, 'utf8')) as { env?: Record<string, string>; jobs: Record<string, { steps: Step[] }> };
  assert.equal(wf.env?.CONFIG_DIR, 'examples');
  const steps = Object.values(wf.jobs).flatMap((j) => j.steps);
  assert.ok(
    steps.some((s) => s.uses?.startsWith('actions/setup-node@')),
    'installs node',
  );
  assert.ok(
    steps.some((s) => s.run?.includes('npm ci')),
    'installs the dependencies',
  );
  return steps.filter((s) => s.run?.includes('dist/mtlsgate.mjs'));
}

function runSteps(steps: Step[], configDir: string) {
  return steps.map((s) => {
    const r = spawnSync('bash', ['-eo', 'pipefail', '-c', s.run!], {
      cwd: ROOT,
      env: { ...process.env, CONFIG_DIR: configDir },
      encoding: 'utf8',
      timeout: 60_000,
    });
    return { step: s.name ?? s.run!, code: r.status, stdout: r.stdout, stderr: r.stderr };
  });
}

let tmp: string;
before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'mtlsgate-workflow-'));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

function examplesCopy(name: string): string {
  const dest = join(tmp, name);
  cpSync(EXAMPLES, dest, { recursive: true, filter: (src) => !/^(certs|keys[/\\]portal)([/\\]|$)/.test(relative(EXAMPLES, src)) });
  return dest;
}

test('the workflow generates the demo certificates, then checks the examples with --format github and runs their access tests', () => {
  const steps = mtlsgateSteps();
  assert.deepEqual(
    steps.map((s) => /dist\/mtlsgate\.mjs (\w+)/.exec(s.run!)?.[1]),
    ['certs', 'check', 'test'],
  );
  assert.match(steps[1].run!, /--format github/);
  const results = runSteps(steps, examplesCopy('ok'));
  for (const r of results) assert.equal(r.code, 0, `${r.step}\n${r.stdout}${r.stderr}`);
  assert.equal(results[1].stdout.includes('::error'), false);
  assert.match(results[1].stderr, /access tests passed/);
  assert.match(results[2].stdout, /\n\d+ passed, 0 failed\n$/);
});

test('an access test the config no longer passes fails the job with an E_ACCESS_TEST annotation on the case', () => {
  const dir = examplesCopy('access');
  // Pin mallory on the reports API: the case saying she is refused now fails.
  const file = join(dir, 'apis', 'partner-reports.yaml');
  writeFileSync(file, readFileSync(file, 'utf8').replace('  - ../certs/partner-a.pem', '  - ../certs/partner-a.pem\n  - ../certs/mallory.pem'));
  const [certs, check, tests] = runSteps(mtlsgateSteps(), dir);
  assert.equal(certs.code, 0, certs.stderr);
  assert.equal(check.code, 1, check.stdout + check.stderr);
  assert.match(
    check.stdout,
    /::error file=[^,]*tests\/access\.yaml,line=\d+,col=5,title=E_ACCESS_TEST::test "partner-access" case "mallory's certificate is not on the list": expected status 403, code mtls\.cert_not_allowed; got status 200/,
  );
  assert.equal(tests.code, 1);
  assert.match(tests.stdout, /\n12 passed, 1 failed\n$/);
});

test('a broken config fails the check step with an ::error annotation on the file and line', () => {
  const dir = examplesCopy('broken');
  const file = join(dir, 'apis', 'profile.yaml');
  writeFileSync(file, readFileSync(file, 'utf8').replace('use_certificate: true', 'use_certifcate: true'));
  const [certs, check] = runSteps(mtlsgateSteps(), dir);
  assert.equal(certs.code, 0, certs.stderr);
  assert.equal(check.code, 1, check.stdout + check.stderr);
  assert.match(check.stdout + check.stderr, /::error file=[^,]*apis\/profile\.yaml,line=\d+,col=\d+,title=E_UNKNOWN_FIELD::.*did you mean "use_certificate"/);
});
