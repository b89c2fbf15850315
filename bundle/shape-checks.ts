// The field checks the bundle's shape is written in (bundle/shape.ts): each takes a value and
// its path in the content, and throws BundleError naming that path. Hand-written because the
// runtime does not carry ajv.
import { containsPrivateKey } from '../cert/private-key.ts';
import { BundleError } from './bundle-error.ts';
import { XFCC_FIELDS } from './types.ts';

export type Check = (v: unknown, path: string) => void;

export function fail(path: string, what: string): never {
  throw new BundleError(`bundle shape: ${path} ${what}`);
}
export function isObj(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
export function obj(v: unknown, path: string): Record<string, unknown> {
  if (!isObj(v)) fail(path, 'must be an object');
  return v;
}
export function str(v: unknown, path: string): void {
  if (typeof v !== 'string') fail(path, 'must be a string');
}
export function strOrNull(v: unknown, path: string): void {
  if (v !== null && typeof v !== 'string') fail(path, 'must be a string or null');
}
export function bool(v: unknown, path: string): void {
  if (typeof v !== 'boolean') fail(path, 'must be a boolean');
}
export function strArray(v: unknown, path: string): asserts v is string[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) fail(path, 'must be an array of strings');
}
export const HEX64 = /^[0-9a-f]{64}$/;
/** A serial number as the bundle writes it: lowercase hex, no leading zeros. */
const SERIAL = /^(0|[1-9a-f][0-9a-f]*)$/;
export function posNum(v: unknown, path: string): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) fail(path, 'must be a positive number');
}
export function listenPath(v: unknown, path: string): void {
  str(v, path);
  if (!(v as string).startsWith('/') || !(v as string).endsWith('/')) fail(path, 'must start and end with "/"');
}
export function fingerprint(v: unknown, path: string): void {
  if (typeof v !== 'string' || !HEX64.test(v)) fail(path, 'must be a fingerprint (64 lowercase hex)');
}
export function fingerprints(v: unknown, path: string): void {
  strArray(v, path);
  for (const fp of v) if (!HEX64.test(fp)) fail(path, `holds a non-fingerprint ${JSON.stringify(fp)}`);
}
export function certificatePem(v: unknown, path: string): void {
  str(v, path);
  if (!(v as string).includes('BEGIN CERTIFICATE')) fail(path, 'must be a PEM certificate');
  if (containsPrivateKey(v as string)) fail(path, 'holds private key material');
}
/** Optional field: absent, or the string "deny". */
export function denyIfPresent(v: unknown, path: string): void {
  if (v !== undefined && v !== 'deny') fail(path, 'must be "deny" when present');
}
/** An object whose fields pass `shape` (fields not in the type are ignored, as JSON readers do). */
export function record(shape: Record<string, Check>): Check {
  const fields = Object.entries(shape);
  return (v, path) => {
    const o = obj(v, path);
    for (let i = 0; i < fields.length; i++) fields[i][1](o[fields[i][0]], `${path}.${fields[i][0]}`);
  };
}
/** Absent, or passing `check`. */
export function optional(check: Check): Check {
  return (v, path) => {
    if (v !== undefined) check(v, path);
  };
}
export function nullable(check: Check): Check {
  return (v, path) => {
    if (v !== null) check(v, path);
  };
}
export function arrayOf(check: Check): Check {
  return (v, path) => {
    if (!Array.isArray(v)) fail(path, 'must be an array');
    for (const item of v) check(item, `${path}[]`);
  };
}
export function mapOf(check: Check): Check {
  return (v, path) => {
    const o = obj(v, path);
    for (const k in o) check(o[k], `${path}.${k}`);
  };
}

export function serials(v: unknown, path: string): void {
  strArray(v, path);
  for (const s of v) if (!SERIAL.test(s)) fail(path, `holds a malformed serial ${JSON.stringify(s)}`);
}
export function httpUrls(v: unknown, path: string): void {
  strArray(v, path);
  for (const u of v) if (!/^https?:\/\//.test(u)) fail(path, `holds a non-http(s) URL ${JSON.stringify(u)}`);
}
export function finiteNumber(v: unknown, path: string): void {
  if (typeof v !== 'number' || !Number.isFinite(v)) fail(path, 'must be a number');
}
export function xfccFields(v: unknown, path: string): void {
  strArray(v, path);
  for (const f of v) if (!(XFCC_FIELDS as readonly string[]).includes(f)) fail(path, `holds an unknown element ${JSON.stringify(f)}`);
}

export function intArray(v: unknown, path: string): asserts v is number[] {
  if (!Array.isArray(v)) fail(path, 'must be an array');
  for (let i = 0; i < v.length; i++) if (!Number.isInteger(v[i])) fail(`${path}[${i}]`, 'must be an integer');
}
export function notAfters(v: unknown, path: string): void {
  if (!Array.isArray(v)) fail(path, 'must be an array');
  for (let i = 0; i < v.length; i++)
    if (v[i] !== null && (typeof v[i] !== 'number' || !Number.isFinite(v[i]))) fail(`${path}[${i}]`, 'must be a number or null');
}
/**
 * Strictly ascending 64-character lowercase hex values, concatenated. Checked by Node's hex
 * decoder (it stops at the first non-hex character) and on the decoded bytes, whose order is the
 * hex order: ~1,000,000 values at start-up.
 */
export function hexTable(v: unknown, path: string): void {
  str(v, path);
  const hex = v as string;
  const b = hex.length % 64 === 0 && hex.toLowerCase() === hex ? Buffer.from(hex, 'hex') : null;
  if (b === null || b.length * 2 !== hex.length) fail(path, 'must be 64-character lowercase hex values, concatenated');
  for (let i = 32; i < b.length; i += 32) if (b.compare(b, i, i + 32, i - 32, i) >= 0) fail(path, `must be strictly ascending (value ${i / 32} is not)`);
}
export function ascendingStrings(v: unknown, path: string): void {
  strArray(v, path);
  for (let i = 1; i < v.length; i++) if (!(v[i - 1] < v[i])) fail(path, `must be strictly ascending (${JSON.stringify(v[i])} is not)`);
}

/**
 * A key id as the compiler writes one (schema/policy.schema.json `$defs/id`: its pattern and
 * maxLength; test/security-bundle-integrity checks they are these). A bundle written by hand or
 * altered on the way could hold anything else: "", a megabyte, control characters for the log,
 * "__proto__", which a merge into a plain object takes as a prototype.
 */
export const KEY_ID = /^[a-z0-9][a-z0-9._-]*$/;
export const MAX_KEY_ID_LENGTH = 256;

/** content.keys.ids: strictly ascending key ids the compiler could have written. */
export function keyIds(v: unknown, path: string): void {
  ascendingStrings(v, path);
  const ids = v as string[];
  for (let i = 0; i < ids.length; i++)
    if (ids[i].length > MAX_KEY_ID_LENGTH || !KEY_ID.test(ids[i]))
      fail(
        `${path}[${i}]`,
        `is not a key id (${ids[i].length > MAX_KEY_ID_LENGTH ? `${ids[i].length} characters, more than ${MAX_KEY_ID_LENGTH}` : JSON.stringify(ids[i].slice(0, 64))}): one is 1 to ${MAX_KEY_ID_LENGTH} of a-z 0-9 . _ -, starting with a letter or digit`,
      );
}
