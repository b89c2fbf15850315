// The key declarations the portal writes to DIR/keys/portal/<id>.yaml, and reading them back
// (status of a developer's requests, approval). The developer and the date live in the file's
// leading comment: the key schema has no field for them and they are not the gateway's concern.
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Document, parseDocument, Scalar, type YAMLSeq } from 'yaml';

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
    ...(req.requireApproval ? [' Waits for approval: mtlsgate approve ' + req.keyId + ' --config DIR --bundle OUT'] : []),
  ].join('\n');
  return doc.toString({ lineWidth: 0 });
}

export interface PortalKey {
  keyId: string;
  policies: string[];
  developer: string;
  entryName: string;
  requestedAt: string;
  pending: boolean;
  /** The inline certificate PEM as declared ('' when it is not inline). */
  certificate: string;
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

/** Reads one portal key file; null when it is not (or no longer) a portal key declaration. */
export function readPortalKey(configDir: string, keyId: string): PortalKey | null {
  const path = keyFilePath(configDir, keyId);
  if (!existsSync(path)) return null;
  const doc = parseDocument(readFileSync(path, 'utf8'));
  const value: unknown = doc.toJS();
  if (doc.errors.length > 0 || value === null || typeof value !== 'object') return null;
  const key = value as Record<string, unknown>;
  if (key.kind !== 'key' || key.id !== keyId) return null;
  const comment = doc.commentBefore ?? '';
  return {
    keyId,
    policies: Array.isArray(key.apply_policies) ? key.apply_policies.filter((p): p is string => typeof p === 'string') : [],
    developer: commentField(comment, 'portal-developer'),
    entryName: commentField(comment, 'portal-entry'),
    requestedAt: /^ ?portal-requested: (\S+)$/m.exec(comment)?.[1] ?? '',
    pending: key.is_inactive === true,
    certificate: typeof key.certificate === 'string' && key.certificate.includes('BEGIN CERTIFICATE') ? key.certificate : '',
  };
}

/** Every portal key in the config directory, newest request first. */
export function listPortalKeys(configDir: string): PortalKey[] {
  const dir = join(configDir, PORTAL_KEYS_DIR);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .map((name) => /^(portal-[0-9a-f]{8})\.yaml$/.exec(name)?.[1])
    .filter((id): id is string => id !== undefined)
    .map((id) => readPortalKey(configDir, id))
    .filter((k): k is PortalKey => k !== null)
    .sort((a, b) => b.requestedAt.localeCompare(a.requestedAt) || a.keyId.localeCompare(b.keyId));
}

/**
 * The text of a key file with `is_inactive: false`, comments and layout kept, plus an
 * approval line in the leading comment. Returns null when the file is not a key declaration.
 */
export function approvedKeyFile(text: string, approvedAt: Date): { text: string; wasPending: boolean } | null {
  const doc = parseDocument(text);
  const value: unknown = doc.toJS();
  if (doc.errors.length > 0 || value === null || typeof value !== 'object' || (value as Record<string, unknown>).kind !== 'key') return null;
  const wasPending = doc.get('is_inactive') === true;
  doc.set('is_inactive', false);
  if (wasPending) {
    const lines = (doc.commentBefore ?? '').split('\n').filter((l) => !/^ ?Waits for approval:/.test(l));
    doc.commentBefore = [...lines, ` portal-approved: ${approvedAt.toISOString()}`].join('\n');
  }
  return { text: doc.toString({ lineWidth: 0 }), wasPending };
}
