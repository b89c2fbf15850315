// The load stage's directory listings kept by `compile --cache` (compiler/dir-listings.ts): a
// directory that did not change is not listed again, and every change that can add, remove or
// rename a config file is seen (a new file deep down, a removed one, a renamed directory, a
// symbolic link, a corrupt listings file); a directory changed just now is never kept.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DiagnosticLog } from '../compiler/diagnostics.ts';
import { DirListings } from '../compiler/dir-listings.ts';
import { loadConfigFiles } from '../compiler/load.ts';
import { tempDir } from './helpers/ops-fixtures.ts';

const t = tempDir('dir-listings');
after(() => t.cleanup());

// A change to a directory sets its mtime to now; two changes within one mtime tick (a few ms here)
// would keep it, which is what the racy window is for. These tests turn the window off, so after
// each change the changed directory's mtime is set to a distinct past instant, as a slower writer
// would leave it.
let tick = 0;
function changed(...dirs: string[]): void {
  const at = new Date(Date.now() - 3_600_000 + ++tick * 1000);
  for (const d of dirs) utimesSync(d, at, at);
}

/** The files a walk finds with the listings (racy window `racyMs`), next to a walk without any; and how many listings were reused. */
function load(dir: string, cache: string, racyMs: number): string[] {
  const listings = DirListings.read(cache, racyMs);
  const cached = loadConfigFiles(dir, new DiagnosticLog(false), [], undefined, listings).map((f) => f.path);
  listings.save();
  const plain = loadConfigFiles(dir, new DiagnosticLog(false)).map((f) => f.path);
  assert.deepEqual(cached, plain);
  return cached;
}

test('an unchanged directory is reused; added, removed and renamed files and directories are seen', () => {
  const dir = join(t.dir, 'config');
  const cache = join(t.dir, 'cache');
  mkdirSync(join(dir, 'keys', 'deep'), { recursive: true });
  mkdirSync(join(dir, 'certs', '000'), { recursive: true });
  mkdirSync(cache);
  writeFileSync(join(dir, 'api.yaml'), 'kind: api\n');
  writeFileSync(join(dir, 'keys', 'a.yaml'), 'kind: key\n');
  writeFileSync(join(dir, 'certs', '000', 'k.pem'), 'x');
  assert.deepEqual(load(dir, cache, 0), ['api.yaml', 'keys/a.yaml']);
  const kept = JSON.parse(readFileSync(join(cache, 'snapshot', 'listings.json'), 'utf8').split('\n')[1]!).dirs.length;
  assert.equal(kept, 5, 'every directory kept with no racy window');
  // Reused as they are (nothing changed), then each change.
  assert.deepEqual(load(dir, cache, 0), ['api.yaml', 'keys/a.yaml']);
  writeFileSync(join(dir, 'keys', 'deep', 'b.yml'), 'kind: key\n');
  changed(join(dir, 'keys', 'deep'));
  assert.deepEqual(load(dir, cache, 0), ['api.yaml', 'keys/a.yaml', 'keys/deep/b.yml']);
  writeFileSync(join(dir, 'certs', '000', 'c.yaml'), 'kind: key\n');
  changed(join(dir, 'certs', '000'));
  assert.deepEqual(load(dir, cache, 0), ['api.yaml', 'certs/000/c.yaml', 'keys/a.yaml', 'keys/deep/b.yml']);
  rmSync(join(dir, 'keys', 'a.yaml'));
  changed(join(dir, 'keys'));
  assert.deepEqual(load(dir, cache, 0), ['api.yaml', 'certs/000/c.yaml', 'keys/deep/b.yml']);
  renameSync(join(dir, 'keys', 'deep'), join(dir, 'keys', 'moved'));
  changed(join(dir, 'keys'));
  assert.deepEqual(load(dir, cache, 0), ['api.yaml', 'certs/000/c.yaml', 'keys/moved/b.yml']);
  // A symbolic link (each real directory is walked once: through the link, which comes first).
  symlinkSync(join(dir, 'keys', 'moved'), join(dir, 'certs', 'link'));
  changed(join(dir, 'certs'));
  assert.deepEqual(load(dir, cache, 0), ['api.yaml', 'certs/000/c.yaml', 'certs/link/b.yml']);
  writeFileSync(join(dir, 'keys', 'moved', 'z.yaml'), 'kind: key\n');
  changed(join(dir, 'keys', 'moved'));
  assert.deepEqual(load(dir, cache, 0), ['api.yaml', 'certs/000/c.yaml', 'certs/link/b.yml', 'certs/link/z.yaml']);
  // A corrupt listings file is ignored.
  writeFileSync(join(cache, 'snapshot', 'listings.json'), readFileSync(join(cache, 'snapshot', 'listings.json'), 'utf8').replace('000', '001'));
  assert.deepEqual(load(dir, cache, 0), ['api.yaml', 'certs/000/c.yaml', 'certs/link/b.yml', 'certs/link/z.yaml']);
});

test('a directory changed within the racy window is not kept', () => {
  const dir = join(t.dir, 'racy');
  const cache = join(t.dir, 'racy-cache');
  mkdirSync(join(dir, 'keys'), { recursive: true });
  mkdirSync(cache);
  writeFileSync(join(dir, 'keys', 'a.yaml'), 'kind: key\n');
  load(dir, cache, 60_000);
  const v = JSON.parse(readFileSync(join(cache, 'snapshot', 'listings.json'), 'utf8').split('\n')[1]!);
  assert.equal(v.dirs.length, 0, 'directories made just now are listed again next time');
});
