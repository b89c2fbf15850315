// Reading loosely typed Tyk JSON: typed getters that never throw, and "is this field set to
// anything that matters" for the drop report (Tyk exports every field, mostly at its zero value).

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type JsonObject = { [k: string]: Json };

export function isObject(v: unknown): v is JsonObject {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
export function obj(v: unknown): JsonObject {
  return isObject(v) ? v : {};
}
export function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}
export function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}
export function bool(v: unknown): boolean {
  return v === true;
}

/**
 * True when a value configures nothing: null, false, 0, "", [], {}, an object turned off
 * (`enabled: false`, `enable: false`, `disabled: true`), or an object of such values.
 */
export function isUnset(v: unknown): boolean {
  if (v === null || v === undefined || v === false || v === 0 || v === '') return true;
  if (Array.isArray(v)) return v.length === 0;
  if (isObject(v)) {
    if (v.enabled === false || v.enable === false || v.disabled === true) return true;
    return Object.values(v).every(isUnset);
  }
  return false;
}
