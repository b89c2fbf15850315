// Section 44, the portal's half: the files the portal and `mtlsgate approve` read from the
// config directory and the bundle path (-o) are regular files of a bounded size
// (common/regular-file.ts). A named pipe there used to hold the portal's event loop, and with it
// every page, waiting for a writer. Through the built CLI, each run killed at 15 s.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, TS_LOADER } from './helpers/cli.ts';
import { tempDir } from './helpers/ops-fixtures.ts';
import { writePortalConfig } from './helpers/portal-fixtures.ts';
import { CLI, demoPki, run } from './helpers/serve-fixtures.ts';

const mkfifo = (path: string) => execFileSync('mkfifo', [path]);

test('a named pipe as the portal bundle (-o), as a key file for approve or for the key pages: refused at once, naming it', async (t) => {
  const tmp = tempDir('portal-inputs');
  t.after(() => tmp.cleanup());
  const pki = await demoPki(tmp.dir);
  const config = writePortalConfig(tmp.dir, 'http://127.0.0.1:9', pki);
  const withPipeKey = writePortalConfig(join(tmp.dir, 'pipe-key'), 'http://127.0.0.1:9', pki);
  const pipeBundle = join(tmp.dir, 'bundle-pipe.json');
  mkfifo(pipeBundle);
  // A pipe with a portal key's name. The compiler's walk takes regular files only (it is no
  // config file there); approve and the key pages must not wait on it either.
  const keys = join(withPipeKey, 'keys', 'portal');
  mkdirSync(keys, { recursive: true });
  mkfifo(join(keys, 'portal-0000abcd.yaml'));

  const [portal, approve, keyPage] = await Promise.all([
    run(process.execPath, [CLI, 'portal', '--config', config, '-o', pipeBundle, '--listen', '127.0.0.1:0'], { timeoutMs: 15_000 }),
    run(process.execPath, [CLI, 'approve', 'portal-0000abcd', '--config', withPipeKey], { timeoutMs: 15_000 }),
    // What a key's status page reads (portal/routes-keys.ts): no key, rather than a wait.
    run(
      process.execPath,
      [
        '--import',
        TS_LOADER,
        '--input-type=module',
        '-e',
        `import { readPortalKey } from ${JSON.stringify(join(ROOT, 'portal', 'key-file.ts'))};\nconsole.log(JSON.stringify(readPortalKey(${JSON.stringify(withPipeKey)}, 'portal-0000abcd')));`,
      ],
      { timeoutMs: 15_000, cwd: ROOT },
    ),
  ]);
  assert.equal(portal.code, 2, `portal: ${portal.stdout}${portal.stderr}`);
  assert.match(portal.stderr, /cannot compile .* into .*bundle-pipe\.json: it is a named pipe, not a regular file/);
  assert.equal(approve.code, 2, `approve: ${approve.stdout}${approve.stderr}`);
  assert.match(approve.stdout + approve.stderr, /cannot read .*portal-0000abcd\.yaml: it is a named pipe, not a regular file/);
  assert.equal(keyPage.code, 0, keyPage.stderr);
  assert.equal(keyPage.stdout.trim(), 'null');
});
