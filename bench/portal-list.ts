// What the key lookup of one "My keys" view costs with N portal key files in DIR/keys/portal
// (portal/routes-keys.ts). Not part of `npm test`.
//
//   node --import tsx bench/portal-list.ts [--files 10000] [--owners 1000] [--views 20] [--root DIR]
//
// --root: the checkout measured (default: this one). One with portal/key-index.ts reads every
// file once (timed as "start"), then each view lists the directory, stats each file and
// returns the owner's keys; between views one file of another owner is rewritten (as a hand
// edit or another portal process would), so each view parses one file. A checkout without it
// (before session 11's index) reads and parses every file at every view (`listPortalKeys`).
// Timed: the key lookup only; the page's rendering and catalog compile are the same either way.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { createCa, issueCert } from '../cli/pki.ts';
import { keyFilePath, type PortalKey, renderKeyFile } from '../portal/key-file.ts';

const { values } = parseArgs({
  options: {
    files: { type: 'string', default: '10000' },
    owners: { type: 'string', default: '1000' },
    views: { type: 'string', default: '20' },
    root: { type: 'string', default: resolve(import.meta.dirname, '..') },
  },
});
const files = Number(values.files);
const owners = Number(values.owners);
const views = Number(values.views);
const root = resolve(values.root);
const moduleOf = (name: string) => pathToFileURL(join(root, 'portal', name)).href;

const dir = mkdtempSync(join(tmpdir(), 'mtlsgate-portal-list-'));
const ca = await createCa('bench CA');
const certificatePem = (await issueCert(ca, 'bench client')).certPem;
function writeKey(i: number, keyOwner: string, requestedAt: Date): void {
  const keyId = `portal-${i.toString(16).padStart(8, '0')}`;
  const text = renderKeyFile({
    keyId,
    owner: keyOwner,
    policy: 'plan',
    entryName: 'Plan',
    developer: `${keyOwner}@example.com`,
    certificatePem,
    requireApproval: false,
    requestedAt,
  });
  writeFileSync(keyFilePath(dir, keyId), text);
}

try {
  mkdirSync(join(dir, 'keys', 'portal'), { recursive: true });
  for (let i = 0; i < files; i++) writeKey(i, `dev-${i % owners}`, new Date(Date.UTC(2026, 0, 1) + i * 1000));
  const viewer = 'dev-7';
  let ownedBy: (owner: string) => PortalKey[];
  let startMs = 0;
  let kind: string;
  if (existsSync(join(root, 'portal', 'key-index.ts'))) {
    const { PortalKeyIndex } = (await import(moduleOf('key-index.ts'))) as typeof import('../portal/key-index.ts');
    const t0 = process.hrtime.bigint();
    const index = new PortalKeyIndex(dir);
    index.refresh();
    startMs = Number(process.hrtime.bigint() - t0) / 1e6;
    ownedBy = (owner) => index.ownedBy(owner);
    kind = 'PortalKeyIndex (listing + a stat per file, parses changed files)';
  } else {
    const { listPortalKeys } = (await import(moduleOf('key-file.ts'))) as typeof import('../portal/key-file.ts');
    ownedBy = (owner) => listPortalKeys(dir).filter((k) => k.owner === owner);
    kind = 'listPortalKeys (reads and parses every file per view)';
  }
  const perView: number[] = [];
  for (let v = 0; v < views; v++) {
    // Another owner's file changes between views (the index parses it again).
    writeKey(v, `dev-${v % owners}`, new Date(Date.UTC(2026, 0, 1) + v * 1000 + 1));
    const t0 = process.hrtime.bigint();
    const keys = ownedBy(viewer);
    perView.push(Number(process.hrtime.bigint() - t0) / 1e6);
    const expected = Math.floor((files - 1 - 7) / owners) + 1;
    if (keys.length !== expected) throw new Error(`${viewer} has ${keys.length} keys, expected ${expected}`);
  }
  perView.sort((a, b) => a - b);
  console.log(
    `${kind}: ${files} key files, ${owners} owners: ` +
      (startMs > 0 ? `start ${startMs.toFixed(0)} ms once; ` : '') +
      `per "My keys" view median ${perView[perView.length >> 1]!.toFixed(1)} ms, max ${perView[perView.length - 1]!.toFixed(1)} ms (${views} views)`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
