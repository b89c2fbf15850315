// The key declarations the portal writes to DIR/keys/portal/<id>.yaml, and reading them back
// (status of a developer's requests, approval). The owner (the signed-in subject) is the key's
// `owner:` field, which the compiler checks and leaves out of the bundle; the developer's
// email, the dates, who approved or switched it off and the receipt's hash live in the
// file's leading comment: they are the portal's records, not the gateway's concern.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Document, parseDocument, Scalar, type YAMLSeq } from 'yaml';
import { NotARegularFileError } from '../common/regular-file.ts';
import { readConfigBytes } from '../compiler/source.ts';

/** Where portal keys live, relative to the config directory. */
export const PORTAL_KEYS_DIR = join('keys', 'portal');

/** Ids the portal generates: `portal-` and 8 random hex digits. Nothing else is a portal key id. */
export const PORTAL_KEY_ID = /^portal-[0-9a-f]{8}$/;

export function newKeyId(): string {
  return 'portal-' + randomBytes(4).toString('hex');
}

/** The file of a portal key. Callers pass only ids matching PORTAL_KEY_ID: no input reaches a path otherwise. */
export function keyFilePath(configDir: string, keyId: string): string {
  if (!PORTAL_KEY_ID.test(keyId)) throw new Error(`not a portal key id: ${JSON.stringify(keyId)}`);
  return join(configDir, PORTAL_KEYS_DIR, `${keyId}.yaml`);
}

export interface KeyRequest {
  keyId: string;
  /** The signed-in subject (OIDC `sub`) that owns the key; undefined on a loopback-only portal. */
  owner?: string;
  /** SHA-256 (hex) of the receipt that lets a loopback-only portal show the key again. */
  receiptSha256?: string;
  policy: string;
  entryName: string;
  developer: string;
  certificatePem: string;
  requireApproval: boolean;
  requestedAt: Date;
}

/** The YAML text of a new portal key (comments first, certificate as a literal block). */
export function renderKeyFile(req: KeyRequest): string {
  const doc = new Document({
    kind: 'key',
    id: req.keyId,
    ...(req.owner !== undefined ? { owner: req.owner } : {}),
    certificate: req.certificatePem,
    apply_policies: [req.policy],
    ...(req.requireApproval ? { is_inactive: true } : {}),
  });
  (doc.get('certificate', true) as Scalar).type = Scalar.BLOCK_LITERAL;
  (doc.get('apply_policies', true) as YAMLSeq).flow = true;
  doc.commentBefore = [
    ' Issued by the mtlsgate self-serve portal. Edit or delete it like any other key.',
    ` portal-developer: ${JSON.stringify(req.developer)}`,
    ` portal-entry: ${JSON.stringify(req.entryName)}`,
    ` portal-requested: ${req.requestedAt.toISOString()}`,
    ...(req.receiptSha256 !== undefined ? [` portal-receipt-sha256: ${req.receiptSha256}`] : []),
    ...(req.requireApproval ? [' Waits for approval: mtlsgate approve ' + req.keyId + ' --config DIR -o OUT'] : []),
  ].join('\n');
  return doc.toString({ lineWidth: 0 });
}

export interface PortalKey {
  keyId: string;
  /** `owner:` of the key ('' when it has none: requested on a loopback-only portal, or written by hand). */
  owner: string;
  policies: string[];
  developer: string;
  entryName: string;
  requestedAt: string;
  /** is_inactive: true and not switched off: waits for approval. */
  pending: boolean;
  /** Switched off by its owner (is_inactive: true and a portal-switched-off line). */
  switchedOff: boolean;
  /** The key's `expires`, ISO, or ''. */
  expires: string;
  /** The inline certificate PEM as declared ('' when it is not inline). */
  certificate: string;
  /** Every inline certificate PEM of the key (`certificate`, or each of `certificates`). */
  certificates: string[];
  /** Hex SHA-256 of the receipt, '' when none was issued. */
  receiptSha256: string;
}

/** A receipt: the secret a loopback-only portal hands out with a key, and the hash it keeps. */
export function newReceipt(keyId: string): { receipt: string; sha256: string } {
  const receipt = `${keyId}.${randomBytes(18).toString('base64url')}`;
  return { receipt, sha256: receiptHash(receipt) };
}

export function receiptHash(receipt: string): string {
  return createHash('sha256').update(receipt).digest('hex');
}

function inlinePem(v: unknown): string {
  return typeof v === 'string' && v.includes('BEGIN CERTIFICATE') ? v : '';
}

function commentField(comment: string, name: string): string {
  const m = new RegExp(`^ ?${name}: (.*)$`, 'm').exec(comment);
  if (!m) return '';
  try {
    const v: unknown = JSON.parse(m[1]);
    return typeof v === 'string' ? v : '';
  } catch {
    return m[1].trim();
  }
}

/**
 * A key file's text, read as the compiler reads every config file (compiler/source.ts: a regular
 * file of at most 64 MiB): a named pipe planted in keys/portal/ throws at once instead of holding
 * the portal's event loop, and with it every page, waiting for a writer.
 */
export function readKeyFileText(path: string): string {
  return readConfigBytes(path).toString('utf8');
}

/** Reads one portal key file; null when it is not (or no longer) a portal key declaration (a named pipe, a device or a file past the bound is none). */
export function readPortalKey(configDir: string, keyId: string): PortalKey | null {
  const path = keyFilePath(configDir, keyId);
  if (!existsSync(path)) return null;
  let text: string;
  try {
    text = readKeyFileText(path);
  } catch (err) {
    if (err instanceof NotARegularFileError) return null;
    throw err;
  }
  return parsePortalKey(text, keyId);
}

/** The ids of the portal key files in the config directory (`portal-<8 hex>.yaml`), unsorted. */
function portalKeyIds(configDir: string): string[] {
  const dir = join(configDir, PORTAL_KEYS_DIR);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .map((name) => /^(portal-[0-9a-f]{8})\.yaml$/.exec(name)?.[1])
    .filter((id): id is string => id !== undefined);
}

/** A portal key file's text as a key; null when it is not a key declaration with this id. */
export function parsePortalKey(text: string, keyId: string): PortalKey | null {
  const doc = parseDocument(text);
  const value: unknown = doc.toJS();
  if (doc.errors.length > 0 || value === null || typeof value !== 'object') return null;
  const key = value as Record<string, unknown>;
  if (key.kind !== 'key' || key.id !== keyId) return null;
  const comment = doc.commentBefore ?? '';
  const inactive = key.is_inactive === true;
  const switchedOff = inactive && /^ ?portal-switched-off: /m.test(comment);
  const certificates = (Array.isArray(key.certificates) ? key.certificates : [key.certificate]).map(inlinePem).filter((p) => p !== '');
  return {
    keyId,
    owner: typeof key.owner === 'string' ? key.owner : '',
    policies: Array.isArray(key.apply_policies) ? key.apply_policies.filter((p): p is string => typeof p === 'string') : [],
    developer: commentField(comment, 'portal-developer'),
    entryName: commentField(comment, 'portal-entry'),
    requestedAt: /^ ?portal-requested: (\S+)$/m.exec(comment)?.[1] ?? '',
    pending: inactive && !switchedOff,
    switchedOff,
    expires: typeof key.expires === 'string' ? key.expires : key.expires instanceof Date ? key.expires.toISOString() : '',
    certificate: certificates[0] ?? '',
    certificates,
    receiptSha256: /^ ?portal-receipt-sha256: ([0-9a-f]{64})$/m.exec(comment)?.[1] ?? '',
  };
}

/**
 * Newest request first, then by id: the order the portal's pages show keys in. Compared by code
 * unit (ISO times sort the same as by locale): the key index bounds request times read from
 * unparsed texts in the same order (portal/key-text.ts).
 */
export function newestFirst(a: PortalKey, b: PortalKey): number {
  return compareText(b.requestedAt, a.requestedAt) || compareText(a.keyId, b.keyId);
}

export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Puts `key` into `top`, the newest-first window of at most `size` keys, if it is newer than
 * its last: the newest keys of many without sorting them all.
 */
export function enterNewest(top: PortalKey[], key: PortalKey, size: number): void {
  if (top.length === size && newestFirst(key, top[size - 1]!) >= 0) return;
  let at = top.length;
  while (at > 0 && newestFirst(key, top[at - 1]!) < 0) at--;
  top.splice(at, 0, key);
  if (top.length > size) top.pop();
}

/**
 * Every portal key in the config directory, newest request first, read and parsed now (every
 * file). The portal's pages read its PortalKeyIndex (portal/key-index.ts) instead.
 */
export function listPortalKeys(configDir: string): PortalKey[] {
  return portalKeyIds(configDir)
    .map((id) => readPortalKey(configDir, id))
    .filter((k): k is PortalKey => k !== null)
    .sort(newestFirst);
}

/**
 * The text of a key file with `is_inactive: false`, comments and layout kept, plus an
 * approval line in the leading comment. Returns null when the file is not a key declaration.
 */
export function approvedKeyFile(text: string, approvedAt: Date, by?: string): { text: string; wasPending: boolean } | null {
  const doc = parseDocument(text);
  const value: unknown = doc.toJS();
  if (doc.errors.length > 0 || value === null || typeof value !== 'object' || (value as Record<string, unknown>).kind !== 'key') return null;
  const wasPending = doc.get('is_inactive') === true;
  doc.set('is_inactive', false);
  if (wasPending) {
    const lines = (doc.commentBefore ?? '').split('\n').filter((l) => !/^ ?Waits for approval:/.test(l));
    doc.commentBefore = [...lines, ` portal-approved: ${approvedAt.toISOString()}${by === undefined ? '' : ` by ${JSON.stringify(by)}`}`].join('\n');
  }
  return { text: doc.toString({ lineWidth: 0 }), wasPending };
}

/** The text of a key file switched off by its owner: `is_inactive: true` and who did it when. */
export function switchedOffKeyFile(text: string, at: Date, by: string): string | null {
  const doc = parseDocument(text);
  const value: unknown = doc.toJS();
  if (doc.errors.length > 0 || value === null || typeof value !== 'object' || (value as Record<string, unknown>).kind !== 'key') return null;
  doc.set('is_inactive', true);
  const lines = (doc.commentBefore ?? '').split('\n').filter((l) => !/^ ?Waits for approval:/.test(l));
  doc.commentBefore = [...lines, ` portal-switched-off: ${at.toISOString()} by ${JSON.stringify(by)}`].join('\n');
  return doc.toString({ lineWidth: 0 });
}
