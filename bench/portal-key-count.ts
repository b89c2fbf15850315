// What the portal's cap on keys per developer (`--developer-key-limit`, portal/key-limit.ts)
// costs each new key, with N portal key files in DIR/keys/portal. Not part of `npm test`.
//
//   node --import tsx bench/portal-key-count.ts [--files 10000] [--owners 1000] [--keys 20] [--owner 'dev 7'] [--root DIR]
//
// --root: the checkout whose portal/key-limit.ts is measured (default: this one). A checkout
// with `countOwnedKeys` (the count before session 11) reads the key files at every new key;
// one with `OwnedKeyCounts` (session 11) or `PortalKeyIndex` (portal/key-index.ts, later in
// session 11: a stat per file too) reads them once (timed as "start") and lists the directory
// at every new key. Per new key the clock covers the count only: the file is then written (as
// the issuer writes it, untimed) so the next key sees one more file. --owner: the developer
// asking; a subject with a space or a quote made the old count parse every file.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { createCa, issueCert } from '../cli/pki.ts';
import { keyFilePath, renderKeyFile } from '../portal/key-file.ts';

const { values } = parseArgs({
  options: {
    files: { type: 'string', default: '10000' },
    owners: { type: 'string', default: '1000' },
    keys: { type: 'string', default: '20' },
    owner: { type: 'string', default: 'new-dev' },
    root: { type: 'string', default: resolve(import.meta.dirname, '..') },
  },
});
const files = Number(values.files);
const owners = Number(values.owners);
const keys = Number(values.keys);
const owner = values.owner;

interface Counts {
  count(owner: string): number;
  written(keyId: string, owner: string | undefined): void;
}
const limit = (await import(pathToFileURL(join(resolve(values.root), 'portal', 'key-limit.ts')).href)) as {
  countOwnedKeys?: (configDir: string, owner: string) => number;
  OwnedKeyCounts?: new (configDir: string) => Counts;
};
const indexFile = join(resolve(values.root), 'portal', 'key-index.ts');
let InMemory = limit.OwnedKeyCounts;
if (existsSync(indexFile)) {
  const { PortalKeyIndex } = (await import(pathToFileURL(indexFile).href)) as { PortalKeyIndex: new (configDir: string) => Counts };
  // Reads nothing until asked: the first count reads every file (timed as "start" below).
  InMemory = class extends PortalKeyIndex {
    constructor(configDir: string) {
      super(configDir);
      this.count('');
    }
  };
}

const dir = mkdtempSync(join(tmpdir(), 'mtlsgate-key-count-'));
const ca = await createCa('bench CA');
const certificatePem = (await issueCert(ca, 'bench client')).certPem;
const hex = (i: number) => i.toString(16).padStart(8, '0');
function writeKey(i: number, keyOwner: string): string {
  const keyId = `portal-${hex(i)}`;
  const text = renderKeyFile({
    keyId,
    owner: keyOwner,
    policy: 'plan',
    entryName: 'Plan',
    developer: `${keyOwner}@example.com`,
    certificatePem,
    requireApproval: false,
    requestedAt: new Date(),
  });
  writeFileSync(keyFilePath(dir, keyId), text);
  return keyId;
}

try {
  mkdirSync(join(dir, 'keys', 'portal'), { recursive: true });
  // Owners dev-0 .. dev-(owners-1) round-robin; the asking owner starts with none of them.
  for (let i = 0; i < files; i++) writeKey(i, `dev-${i % owners}`);
  let counts: Counts | undefined;
  let startMs = 0;
  if (InMemory !== undefined) {
    const t0 = process.hrtime.bigint();
    counts = new InMemory(dir);
    startMs = Number(process.hrtime.bigint() - t0) / 1e6;
  } else if (limit.countOwnedKeys === undefined) throw new Error(`${values.root}/portal/key-limit.ts has neither an in-memory count nor countOwnedKeys`);
  const perKey: number[] = [];
  for (let k = 0; k < keys; k++) {
    const t0 = process.hrtime.bigint();
    const held = counts !== undefined ? counts.count(owner) : limit.countOwnedKeys!(dir, owner);
    perKey.push(Number(process.hrtime.bigint() - t0) / 1e6);
    if (held !== k) throw new Error(`counted ${held} keys of ${owner}, expected ${k}`);
    const keyId = writeKey(files + k, owner);
    counts?.written(keyId, owner);
  }
  perKey.sort((a, b) => a - b);
  const median = perKey[perKey.length >> 1]!;
  const kind = counts !== undefined ? 'in memory (one listing per key)' : 'countOwnedKeys (reads every file per key)';
  console.log(
    `${kind}: ${files} key files, owner ${JSON.stringify(owner)}: ` +
      (counts !== undefined ? `start ${startMs.toFixed(0)} ms once; ` : '') +
      `per new key median ${median.toFixed(2)} ms, max ${perKey[perKey.length - 1]!.toFixed(2)} ms (${keys} keys)`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
