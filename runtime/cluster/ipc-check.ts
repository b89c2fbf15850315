// Every message a worker sends the primary is checked here before the primary acts on it. The
// workers run this very code, so a malformed message is a bug or a worker an attacker controls
// through a flaw on its request path. Either way the primary must not crash on it (every worker
// drains when the primary goes), keep a value it cannot write to --state-dir (a signing time
// that is no date stopped every later write of the state file), or hand the other workers a
// floor that refuses every bundle from then on (a signing time far in the future). The
// form is all this checks: before the primary adopts a bundle or CRL floor, verify-taken.ts
// checks the evidence (the signature, the CRL's own bytes against its CA: section 42).
import { MAX_SIGNED_AHEAD_MS } from '../bundle-floor.ts';
import { MAX_CRL_BYTES } from '../../common/size-limits.ts';
import { CRL_WORKER_MIN_BYTES } from '../crl-worker-client.ts';
import { HANDED_NAME } from './crl-files.ts';
import { MAX_LEASE, type ToPrimary } from './lease-protocol.ts';

type Fields = Record<string, unknown>;

const isObject = (v: unknown): v is Fields => typeof v === 'object' && v !== null && !Array.isArray(v);
const isInt = (v: unknown, min: number, max: number): v is number => Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max;
const isText = (v: unknown, max: number): v is string => typeof v === 'string' && v.length <= max;
const isNumber = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
const SHA256 = /^sha256:[0-9a-f]{64}$/;
const isBase64 = (v: unknown, maxBytes: number) => isText(v, Math.ceil(maxBytes / 3) * 4) && /^[A-Za-z0-9+/]*={0,2}$/.test(v);
/** A CA certificate, in DER: a few KiB at most (RSA-16384 with long names stays far below). */
const MAX_CERTIFICATE_BYTES = 64 * 1024;
/** A lease key names an API, a policy and a key id: far below this. */
const MAX_KEY = 4_096;
const MAX_TEXT = 64 * 1024;
/** A time in ms since the epoch no later than the skew a signature or a CRL may have. */
const isTime = (v: unknown, now: number) => isInt(v, 0, now + MAX_SIGNED_AHEAD_MS);

function bundleProblem(b: unknown, now: number): string | null {
  if (!isObject(b)) return 'bundle is not an object';
  if (!isTime(b.signedAt, now)) return 'bundle.signedAt is not a time in ms up to five minutes ahead';
  if (typeof b.digest !== 'string' || !SHA256.test(b.digest)) return 'bundle.digest is not sha256:<hex>';
  if (!isText(b.keyId, 256)) return 'bundle.keyId is not a short string';
  return b.signature === undefined || isText(b.signature, 256) ? null : 'bundle.signature is not a short string';
}

function crlProblem(c: unknown, now: number): string | null {
  if (!isObject(c) || !isText(c.url, 8_192)) return 'crl.url is not a string';
  const f = c.floor;
  if (!isObject(f) || typeof f.ca !== 'string' || !/^[0-9a-f]{64}$/.test(f.ca)) return 'crl.floor.ca is not a SHA-256 fingerprint';
  if (!isTime(f.thisUpdate, now)) return 'crl.floor.thisUpdate is not a time in ms up to five minutes ahead';
  if (!(f.number === null || (typeof f.number === 'string' && /^[0-9a-f]{1,128}$/.test(f.number)))) return 'crl.floor.number is neither null nor hex';
  // A list of 1 MiB and more crosses as a file (crl-files.ts): base64 of one would be parsed on the primary's loop.
  if (c.der !== undefined && !isBase64(c.der, CRL_WORKER_MIN_BYTES)) return 'crl.der is not base64 of a CRL under 1 MiB';
  const file = c.file;
  if (file !== undefined) {
    if (c.der !== undefined) return 'crl has both der and file';
    if (!isObject(file) || typeof file.name !== 'string' || !HANDED_NAME.test(file.name)) return 'crl.file.name is not 32 hex digits and .crl';
    if (!isInt(file.bytes, 1, MAX_CRL_BYTES)) return 'crl.file.bytes is not a size up to the CRL ceiling';
    if (typeof file.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(file.sha256)) return 'crl.file.sha256 is not 64 hex digits';
  }
  return c.issuer === undefined || isBase64(c.issuer, MAX_CERTIFICATE_BYTES) ? null : 'crl.issuer is not base64 of a certificate';
}

// Any finite numbers: the authority decides what limits anything (effectiveRate, effectiveQuota: -1 is unlimited).
const isLimit = (v: unknown, a: string, b: string) => v === null || (isObject(v) && isNumber(v[a]) && isNumber(v[b]));
const isCloses = (v: unknown) => Array.isArray(v) && v.length <= 2 * MAX_LEASE && v.every((n) => isInt(n, 0, Number.MAX_SAFE_INTEGER));

/** prom-client's aggregators (its `aggregators`, which its types do not declare). */
const AGGREGATORS = ['sum', 'first', 'omit', 'average', 'min', 'max'];

/** prom-client's getMetricsAsJSON() of a worker's registries, as AggregatorRegistry.aggregate reads it (a NaN crosses JSON as null). */
function metricsProblem(v: unknown): string | null {
  if (!Array.isArray(v)) return 'metrics is not a list';
  for (const m of v as unknown[]) {
    if (!isObject(m) || !isText(m.name, 256) || !isText(m.help, MAX_TEXT) || !['counter', 'gauge', 'histogram', 'summary'].includes(m.type as string))
      return 'a metric has no name, help or type';
    if (typeof m.aggregator !== 'string' || !AGGREGATORS.includes(m.aggregator)) return `metric ${m.name}: unknown aggregator`;
    if (
      !Array.isArray(m.values) ||
      !m.values.every((x) => isObject(x) && (typeof x.value === 'number' || x.value === null) && (x.labels === undefined || isObject(x.labels)))
    )
      return `metric ${m.name}: values are not {value, labels}`;
  }
  return null;
}

function answerProblem(m: Fields): string | null {
  if (!isInt(m.id, 1, Number.MAX_SAFE_INTEGER)) return 'answer.id is not a query id';
  const h = m.health;
  if (h !== undefined && !(isObject(h) && ['ok', 'degraded', 'draining'].includes(h.status as string) && isObject(h.bundle) && isText(h.bundle.digest, 100)))
    return 'answer.health is not a health report';
  if (m.certificates !== undefined && !Array.isArray(m.certificates)) return 'answer.certificates is not a list';
  return m.metrics === undefined ? null : metricsProblem(m.metrics);
}

const checks: Record<ToPrimary['type'], (m: Fields, now: number) => string | null> = {
  'mtlsgate:hello': () => null,
  'mtlsgate:ready': (m) => (isText(m.listen, 300) && isText(m.digest, 100) ? null : 'ready needs listen and digest'),
  'mtlsgate:failed': (m) => (isText(m.error, MAX_TEXT) ? null : 'failed needs an error'),
  'mtlsgate:acquire': (m) =>
    isInt(m.req, 0, Number.MAX_SAFE_INTEGER) &&
    isText(m.key, MAX_KEY) &&
    isLimit(m.rate, 'rate', 'per') &&
    isLimit(m.quota, 'max', 'renewal') &&
    isInt(m.want, 1, MAX_LEASE) &&
    typeof m.prefetch === 'boolean' &&
    isCloses(m.closes)
      ? null
      : 'acquire needs req, key, rate, quota, want (1-4096), prefetch and closes',
  'mtlsgate:return': (m) => (isText(m.key, MAX_KEY) && isCloses(m.closes) ? null : 'return needs key and closes'),
  'mtlsgate:answer': answerProblem,
  'mtlsgate:taken': (m, now) => {
    if (m.bundle === undefined && m.crl === undefined) return 'taken names neither a bundle nor a CRL';
    return (m.bundle === undefined ? null : bundleProblem(m.bundle, now)) ?? (m.crl === undefined ? null : crlProblem(m.crl, now));
  },
};

/** The message as the primary may act on it, or why it may not (the primary drops it and says so). */
export function checkToPrimary(m: { type: string }, now = Date.now()): ToPrimary | string {
  const check = Object.hasOwn(checks, m.type) ? checks[m.type as ToPrimary['type']] : undefined;
  if (check === undefined) return `unknown type ${JSON.stringify(m.type.slice(0, 64))}`;
  const problem = check(m as unknown as Fields, now);
  return problem === null ? (m as ToPrimary) : `${m.type}: ${problem}`;
}
