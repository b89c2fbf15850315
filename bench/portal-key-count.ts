// What the portal's cap on keys per developer (`--developer-key-limit`, portal/key-limit.ts)
// costs each new key, with N portal key files in DIR/keys/portal. Not part of `npm test`.
//
//   node --import tsx bench/portal-key-count.ts [--files 10000] [--owners 1000] [--keys 20] [--owner 'dev 7'] [--root DIR]
//
// --root: the checkout whose portal/key-limit.ts is measured (default: this one). A checkout
// with `countOwnedKeys` (the count before session 11) reads the key files at every new key;
// one with `OwnedKeyCounts` (session 11) or `PortalKeyIndex` (portal/key-index.ts) reads them
// once (timed as "start"), then session 11's index lists the directory and stats every file
// at every new key, this one reads what the directory watch named. Per new key the clock
// covers the count only: the file is then written (as the issuer writes it, untimed) so the
// next key sees one more file. --owner: the developer asking; a subject with a space or a
// quote made the old count parse every file.
import { existsSync } from 'node:fs';
import { portalKeyDir, portalKeyFlags } from './lib/portal-keys.ts';

const { files, owners, values, portalModule, root } = portalKeyFlags({ keys: '20', owner: 'new-dev' });
const keys = Number(values.keys);
const owner = values.owner!;

interface Counts {
  count(owner: string): number | Promise<number>;
  written(keyId: string, owner: string | undefined): void;
  load?(): Promise<void>;
  refresh?(): void;
}
const limit = (await import(portalModule('key-limit.ts'))) as {
  countOwnedKeys?: (configDir: string, owner: string) => number;
  OwnedKeyCounts?: new (configDir: string) => Counts;
};
let made: ((configDir: string) => Promise<Counts>) | undefined;
if (existsSync(`${root}/portal/key-index.ts`)) {
  const { PortalKeyIndex } = (await import(portalModule('key-index.ts'))) as { PortalKeyIndex: new (configDir: string) => Counts };
  // Reads nothing until asked: every file is read here (timed as "start" below).
  made = async (configDir) => {
    const index = new PortalKeyIndex(configDir);
    if (index.load) await index.load();
    else index.refresh!();
    return index;
  };
} else if (limit.OwnedKeyCounts !== undefined) made = async (configDir) => new limit.OwnedKeyCounts!(configDir);

// Owners dev-0 .. dev-(owners-1) round-robin; the asking owner starts with none of them.
const keyDir = await portalKeyDir('mtlsgate-key-count-', files, owners);
try {
  let counts: Counts | undefined;
  let startMs = 0;
  if (made !== undefined) {
    const t0 = process.hrtime.bigint();
    counts = await made(keyDir.dir);
    startMs = Number(process.hrtime.bigint() - t0) / 1e6;
  } else if (limit.countOwnedKeys === undefined) throw new Error(`${root}/portal/key-limit.ts has neither an in-memory count nor countOwnedKeys`);
  const perKey: number[] = [];
  for (let k = 0; k < keys; k++) {
    const t0 = process.hrtime.bigint();
    const held = counts !== undefined ? await counts.count(owner) : limit.countOwnedKeys!(keyDir.dir, owner);
    perKey.push(Number(process.hrtime.bigint() - t0) / 1e6);
    if (held !== k) throw new Error(`counted ${held} keys of ${owner}, expected ${k}`);
    const keyId = keyDir.writeKey(files + k, owner, new Date());
    counts?.written(keyId, owner);
  }
  perKey.sort((a, b) => a - b);
  const median = perKey[perKey.length >> 1]!;
  const kind = counts !== undefined ? 'in memory' : 'countOwnedKeys (reads every file per key)';
  console.log(
    `${kind}: ${files} key files, owner ${JSON.stringify(owner)}: ` +
      (counts !== undefined ? `start ${startMs.toFixed(0)} ms once; ` : '') +
      `per new key median ${median.toFixed(2)} ms, max ${perKey[perKey.length - 1]!.toFixed(2)} ms (${keys} keys)`,
  );
} finally {
  keyDir.cleanup();
}
