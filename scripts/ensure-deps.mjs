// prestart/pretest hook: `npm start` and `npm test` should be the only two commands a newcomer
// needs on a fresh machine.
// 1. node_modules: installs exactly what package-lock.json pins (`npm ci`) when missing.
// 2. npm test only: the system tools the tests drive for real (curl, openssl, redis-server and
//    redis-cli, chromium, zsh). Missing ones are installed with apt-get when this runs as root on
//    Debian/Ubuntu (what .ci/run does); otherwise the run stops at once with ONE line naming
//    what is missing and the command that installs it. A test is never skipped silently.
// Costs ~nothing when everything is present.
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Tool on PATH -> the Debian package that provides it. */
export const TEST_TOOLS = {
  curl: 'curl',
  openssl: 'openssl',
  'redis-server': 'redis-server',
  'redis-cli': 'redis-tools',
  chromium: 'chromium',
  // `mtlsgate completion zsh` is parsed by a real zsh (test/cli-flags.test.ts).
  zsh: 'zsh',
};

function onPath(tool) {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => dir !== '' && existsSync(join(dir, tool)));
}

export function missingTools() {
  return Object.keys(TEST_TOOLS).filter((tool) => !onPath(tool));
}

function installNodeModules() {
  // One build-time and one run-time dependency: if either is missing, the install is incomplete.
  const markers = ['node_modules/.package-lock.json', 'node_modules/esbuild/package.json', 'node_modules/undici/package.json'];
  if (markers.every((m) => existsSync(join(root, m)))) return;
  const hasLock = existsSync(join(root, 'package-lock.json'));
  const args = hasLock ? ['ci', '--no-audit', '--no-fund'] : ['install', '--no-audit', '--no-fund'];
  console.error(`mtlsgate: dependencies are not installed; running npm ${args[0]} (once)...`);
  const r = spawnSync(process.platform === 'win32' ? 'npm.cmd' : 'npm', args, { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' });
  if (r.status !== 0) {
    console.error(`mtlsgate: npm ${args[0]} failed (exit ${r.status ?? r.signal}); fix the error above, then run it again`);
    process.exit(r.status ?? 1);
  }
}

function installTestTools() {
  let missing = missingTools();
  if (missing.length === 0) return;
  const packages = [...new Set(missing.map((t) => TEST_TOOLS[t]))];
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (isRoot && onPath('apt-get')) {
    console.error(`mtlsgate: npm test needs ${missing.join(', ')}; installing ${packages.join(' ')} with apt-get (once)...`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    for (const args of [
      ['update', '-qq'],
      ['install', '-y', '-qq', '--no-install-recommends', ...packages],
    ]) {
      const r = spawnSync('apt-get', args, { stdio: ['ignore', 'ignore', 'inherit'], env });
      if (r.status !== 0) {
        console.error(`mtlsgate: apt-get ${args[0]} failed (exit ${r.status ?? r.signal}); install ${packages.join(' ')} yourself, then run npm test again`);
        process.exit(1);
      }
    }
    missing = missingTools();
    if (missing.length === 0) return;
  }
  const sudo = isRoot ? '' : 'sudo ';
  const how = onPath('apt-get')
    ? `${sudo}apt-get install -y ${packages.join(' ')}`
    : `your package manager (Debian/Ubuntu: ${sudo}apt-get install -y ${packages.join(' ')})`;
  console.error(`mtlsgate: npm test needs ${missing.join(', ')}, not found on PATH; install with: ${how}`);
  process.exit(1);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  installNodeModules();
  // npm sets npm_lifecycle_event: "pretest" for npm test; `node scripts/ensure-deps.mjs --test` too.
  if (process.env.npm_lifecycle_event === 'pretest' || process.argv.includes('--test')) installTestTools();
}
