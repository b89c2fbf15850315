// `mtlsgate demo` (npm start) on a copy of examples/ whose upstream ports are moved to free
// ones, with the gateway and admin on port 0: it starts, every curl command it prints gives
// the answer printed next to it when run as printed, editing the YAML revokes a certificate,
// and Ctrl-C (SIGINT) stops everything with exit 0.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir, waitFor } from './helpers/ops-fixtures.ts';
import { CLI, run } from './helpers/serve-fixtures.ts';
import { freePort } from '../common/listen.ts';

const t = tempDir('demo');
after(() => t.cleanup());

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? yamlFiles(p) : /\.ya?ml$/.test(n) ? [p] : [];
  });
}

/** Copies examples/ (without generated certificates or portal keys) and moves its upstream ports. */
async function examplesCopy(): Promise<string> {
  const dest = join(t.dir, 'examples');
  cpSync(join(import.meta.dirname, '..', 'examples'), dest, {
    recursive: true,
    filter: (src) => !/[/\\]examples[/\\](certs|keys[/\\]portal)([/\\]|$)/.test(src),
  });
  const moved = new Map<string, string>();
  for (const file of yamlFiles(dest)) {
    let text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/target_url: http:\/\/127\.0\.0\.1:(\d+)/g)) {
      if (!moved.has(m[1])) moved.set(m[1], String(await freePort()));
    }
    text = text.replace(/(target_url: http:\/\/127\.0\.0\.1:)(\d+)/g, (_all, prefix: string, port: string) => prefix + moved.get(port));
    writeFileSync(file, text);
  }
  assert.ok(moved.size >= 1, 'the examples proxy to loopback upstreams');
  return dest;
}

interface Step {
  title: string;
  command: string;
  status: number;
  code: string | null;
}

function parseSteps(stdout: string): Step[] {
  const lines = stdout.split('\n').filter((l) => !l.startsWith('{'));
  const steps: Step[] = [];
  for (let i = 0; i < lines.length; i++) {
    const title = /^\d+\) (.*)$/.exec(lines[i]);
    if (!title) continue;
    const command = /^ {3}(curl .*)$/.exec(lines[i + 1] ?? '');
    const expect = /^ {3}expect: HTTP (\d{3})(?: (\{.*\}))?/.exec(lines[i + 2] ?? '');
    assert.ok(command && expect, `step "${title[1]}" has a command and an expectation`);
    steps.push({ title: title[1], command: command[1], status: Number(expect[1]), code: expect[2] ? (JSON.parse(expect[2]).code as string) : null });
  }
  return steps;
}

async function runStep(step: Step, cwd: string): Promise<{ status: number; body: string }> {
  const r = await run('bash', ['-c', step.command], { cwd, timeoutMs: 20_000 });
  assert.equal(r.code, 0, `${step.command}\n${r.stderr}`);
  const m = /\nHTTP (\d{3})\n?$/.exec(r.stdout);
  assert.ok(m, `the command prints its status last: ${r.stdout}`);
  return { status: Number(m[1]), body: r.stdout.slice(0, m.index) };
}

test('demo: starts, its printed curl commands answer as printed, a YAML edit revokes, Ctrl-C stops', async () => {
  const examples = await examplesCopy();
  const child = spawn(
    process.execPath,
    [CLI, 'demo', '--config', examples, '--out', join(t.dir, '.demo', 'bundle.json'), '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'],
    {
      cwd: t.dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  try {
    await waitFor(
      'the demo guide',
      () => {
        if (child.exitCode !== null) throw new Error(`demo exited ${child.exitCode}:\n${stdout}\n${stderr}`);
        return stdout.includes('Ctrl-C stops everything.');
      },
      60_000,
      50,
    );
    assert.match(stdout, /generated demo certificates in examples\/certs/);
    const steps = parseSteps(stdout);
    const statuses = steps.map((s) => s.status);
    assert.ok(steps.length >= 5, `at least five steps:\n${stdout}`);
    assert.ok(statuses.filter((s) => s === 200).length >= 3, 'static, dynamic and token successes');
    assert.ok(steps.some((s) => s.status === 401 && s.code === 'auth.auth_field_missing'));
    assert.ok(steps.some((s) => s.status === 403 && s.code === 'mtls.cert_not_allowed'));
    assert.ok(
      steps.some((s) => s.command.includes('Authorization: Bearer')),
      'a token example',
    );
    for (const step of steps) {
      const got = await runStep(step, t.dir);
      assert.equal(got.status, step.status, `${step.title}\n${step.command}\n${got.body}`);
      if (step.code) assert.equal(JSON.parse(got.body).code, step.code, step.title);
      else assert.ok(JSON.parse(got.body).upstream, `${step.title}: the echo upstream answered`);
    }

    // Revoke the static API's pinned certificate in the YAML: the demo recompiles, the gateway reloads.
    const staticStep = steps.find((s) => s.status === 200 && s.title.startsWith('static mTLS'))!;
    const file = join(examples, 'apis', 'partner-reports.yaml');
    writeFileSync(file, readFileSync(file, 'utf8').replace('  - ../certs/partner-a.pem', '  - ../certs/bob.pem'));
    await waitFor('the revoked certificate refused', async () => (await runStep(staticStep, t.dir)).status === 403, 20_000, 100);
    assert.match(stdout, /recompiled/);

    child.kill('SIGINT');
    assert.equal(await exited, 0, stderr);
    assert.match(stdout, /demo stopped/);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});
