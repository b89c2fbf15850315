// prestart/pretest hook: a fresh clone has no node_modules, and `npm start` / `npm test` should
// be the only two commands a newcomer needs. Installs exactly what package-lock.json pins
// (`npm ci`) when the dependencies are missing; does nothing (and costs ~nothing) otherwise.
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// One build-time and one run-time dependency: if either is missing, the install is incomplete.
const markers = ['node_modules/.package-lock.json', 'node_modules/esbuild/package.json', 'node_modules/undici/package.json'];
if (markers.every((m) => existsSync(join(root, m)))) process.exit(0);

const hasLock = existsSync(join(root, 'package-lock.json'));
const args = hasLock ? ['ci', '--no-audit', '--no-fund'] : ['install', '--no-audit', '--no-fund'];
console.error(`mtlsgate: dependencies are not installed; running npm ${args[0]} (once)...`);
const r = spawnSync(process.platform === 'win32' ? 'npm.cmd' : 'npm', args, { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' });
if (r.status !== 0) {
  console.error(`mtlsgate: npm ${args[0]} failed (exit ${r.status ?? r.signal}); fix the error above, then run it again`);
  process.exit(r.status ?? 1);
}
