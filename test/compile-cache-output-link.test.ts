// `compile -o FILE --cache DIR` links FILE to the bundle the cache's snapshot just wrote
// (DIR/snapshot/bundle.json) instead of writing the same bytes twice (at 1,000,000 keys, a 94 MB
// write less a recompile): the output is still written atomically and made durable, is the same
// bytes as an uncached compile, and is linked only while the cache's file is the one written
// (common/atomic-write.ts `writeFileAtomic` with a `SameBytesFile`). A signed output is its own file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../common/atomic-write.ts';
import { cacheSuite, edit } from './helpers/cache-config.ts';

const suite = cacheSuite('compile-output-link');
const cli = join(import.meta.dirname, '..', 'dist', 'mtlsgate.mjs');

const inode = (path: string) => statSync(path).ino;

test('compile -o FILE --cache DIR: the output is the snapshot bundle linked, the same bytes as uncached', () => {
  if (!existsSync(cli)) throw new Error('run npm run build first');
  const { dir, cache } = suite.copy('cli');
  const outDir = join(suite.dir, 'out');
  execFileSync('mkdir', ['-p', outDir]);
  const out = join(outDir, 'bundle.json');
  const snapshotBundle = join(cache, 'snapshot', 'bundle.json');
  const compile = (path: string, extra: string[]) => execFileSync(process.execPath, [cli, 'compile', dir, '-o', path, ...extra], { stdio: 'pipe' });
  const uncached = () => {
    compile(join(suite.dir, 'plain.json'), []);
    return readFileSync(join(suite.dir, 'plain.json'));
  };

  compile(out, ['--cache', cache]);
  assert.ok(readFileSync(out).equals(uncached()), 'cold: same bytes');
  assert.equal(inode(out), inode(snapshotBundle), 'cold: linked');

  // A patched compile writes a new bundle.json: the output follows it; the old one is left as it was.
  const before = readFileSync(out);
  edit(join(dir, 'keys/part-1.yaml'), (s) => s.replace(/apply_policies: \[policy-\d+\]/, 'apply_policies: [policy-042, policy-007]'));
  const previousInode = inode(out);
  compile(out, ['--cache', cache, '--timings']);
  assert.ok(readFileSync(out).equals(uncached()), 'patched: same bytes');
  assert.ok(!readFileSync(out).equals(before));
  assert.equal(inode(out), inode(snapshotBundle), 'patched: linked');
  assert.notEqual(inode(out), previousInode);

  // Nothing changed: bundle.json is not written again and the output already is that file.
  compile(out, ['--cache', cache]);
  assert.ok(readFileSync(out).equals(uncached()), 'unchanged: same bytes');
  assert.equal(inode(out), inode(snapshotBundle));
  assert.deepEqual(readdirSync(outDir), ['bundle.json'], 'no temporary file left behind');

  // Signed: other header bytes, so the output is a file of its own.
  execFileSync(process.execPath, [cli, 'keygen', join(suite.dir, 'signer')], { stdio: 'pipe' });
  compile(out, ['--cache', cache, '--sign', join(suite.dir, 'signer.key')]);
  assert.notEqual(inode(out), inode(snapshotBundle), 'signed: not linked');
  assert.match(readFileSync(out, 'latin1').slice(0, 300), /"signature":/);
  assert.ok(readFileSync(snapshotBundle).equals(uncached()), 'the cache still holds the unsigned bundle');
});

test('writeFileAtomic links a SameBytesFile only while it is the file written', () => {
  const base = join(suite.dir, 'atomic');
  execFileSync('mkdir', ['-p', base]);
  const source = join(base, 'source.json');
  const bytes = Buffer.from('{"same":"bytes"}\n');
  writeFileSync(source, bytes);
  const st = statSync(source);
  const same = { path: source, dev: st.dev, ino: st.ino, size: st.size };

  writeFileAtomic(join(base, 'linked.json'), bytes, { same });
  assert.equal(inode(join(base, 'linked.json')), st.ino, 'linked');

  // The source replaced since (another inode): the bytes are written, not linked to what is there now.
  writeFileSync(join(base, 'other.json'), '{"other":"bytes!"}\n');
  execFileSync('mv', [join(base, 'other.json'), source]);
  writeFileAtomic(join(base, 'written.json'), bytes, { same });
  assert.notEqual(inode(join(base, 'written.json')), inode(source));
  assert.ok(readFileSync(join(base, 'written.json')).equals(bytes));

  // Another size than the bytes to write: written.
  const wrongSize = { ...same, ino: inode(source), size: statSync(source).size };
  writeFileAtomic(join(base, 'sized.json'), bytes, { same: wrongSize });
  assert.ok(readFileSync(join(base, 'sized.json')).equals(bytes));
  assert.notEqual(inode(join(base, 'sized.json')), inode(source));
  assert.deepEqual(readdirSync(base).sort(), ['linked.json', 'sized.json', 'source.json', 'written.json']);
});
