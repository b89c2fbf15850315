// What the portal's key-index benches (bench/portal-list.ts, bench/portal-key-count.ts) share:
// their common flags (--files, --owners, --root) and a scratch directory of portal key files
// written as the portal writes them, each owned round-robin by dev-0 .. dev-(owners-1).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { createCa, issueCert } from '../../cli/pki.ts';
import { keyFilePath, renderKeyFile } from '../../portal/key-file.ts';

type Options = NonNullable<ParseArgsConfig['options']>;

/** The flags every portal key bench takes, and its own (`extra`, string flags with defaults). */
export function portalKeyFlags(extra: Record<string, string>): {
  files: number;
  owners: number;
  /** The checkout measured (--root; default: this one). */
  root: string;
  /** A module of that checkout's portal/, as an import URL. */
  portalModule(name: string): string;
  values: Record<string, string>;
} {
  const options: Options = {
    files: { type: 'string', default: '10000' },
    owners: { type: 'string', default: '1000' },
    root: { type: 'string', default: resolve(import.meta.dirname, '..', '..') },
  };
  for (const [name, value] of Object.entries(extra)) options[name] = { type: 'string', default: value };
  const values = parseArgs({ options }).values as Record<string, string>;
  const root = resolve(values.root!);
  return {
    files: Number(values.files),
    owners: Number(values.owners),
    root,
    portalModule: (name) => pathToFileURL(join(root, 'portal', name)).href,
    values,
  };
}

/**
 * Writes key number `i` of `owner` into configDir/keys/portal as the portal writes it (plan
 * `policy`), requested `i` seconds after 2026-01-01 unless told; returns its id.
 */
export function writeBenchKey(
  configDir: string,
  i: number,
  owner: string,
  certificatePem: string,
  policy: string,
  requestedAt = new Date(Date.UTC(2026, 0, 1) + i * 1000),
): string {
  const keyId = `portal-${i.toString(16).padStart(8, '0')}`;
  const text = renderKeyFile({
    keyId,
    owner,
    policy,
    entryName: policy,
    developer: `${owner}@example.com`,
    certificatePem,
    requireApproval: false,
    requestedAt,
  });
  writeFileSync(keyFilePath(configDir, keyId), text);
  return keyId;
}

export interface KeyDir {
  /** The config directory (its keys/portal holds the files). */
  dir: string;
  /** Writes (or rewrites) the file of key number `i`; returns its id. */
  writeKey(i: number, owner: string, requestedAt?: Date): string;
  cleanup(): void;
}

/** A temp config directory with `files` key files, owners round-robin, requested one second apart from 2026-01-01. */
export async function portalKeyDir(prefix: string, files: number, owners: number): Promise<KeyDir> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const ca = await createCa('bench CA');
  // One certificate for all: the benches read the key files, they do not compile them.
  const certificatePem = (await issueCert(ca, 'bench client')).certPem;
  const writeKey = (i: number, owner: string, requestedAt?: Date): string => writeBenchKey(dir, i, owner, certificatePem, 'plan', requestedAt);
  mkdirSync(join(dir, 'keys', 'portal'), { recursive: true });
  for (let i = 0; i < files; i++) writeKey(i, `dev-${i % owners}`);
  return { dir, writeKey, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
