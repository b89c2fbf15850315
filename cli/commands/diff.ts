// `mtlsgate diff OLD NEW`: who gains or loses access between two bundles, or between a bundle
// and a config directory (the plan before deploying). The comparison is bundle/diff.ts (pure);
// this module loads, verifies (or compiles) and prints.
import { statSync } from 'node:fs';
import { isShardedDir, readBundleAt } from '../../bundle/read-sharded.ts';
import { MAX_BUNDLE_BYTES } from '../../common/size-limits.ts';
import { UsageError, type Command } from '../command.ts';
import { loadBundle } from '../../bundle/read.ts';
import { compileDir, ConfigDirError, displayPath } from '../../compiler/index.ts';
import { describePath, readInput, STDIO } from '../io.ts';
import { envelope, FORMAT_OPTIONS, githubLine, parseFormat, type Problem } from '../report.ts';
import type { AccessRight, Bundle, BundleApi, BundleKey } from '../../bundle/types.ts';
import { diffBundles, type AccessGrant, type BundleDiff, type FieldChange } from '../../bundle/diff.ts';
import { errnoMessage } from '../../common/errno.ts';
import { visibleLines } from '../../common/visible-text.ts';
import { parseCommandLine } from '../flags.ts';

const usage = `usage: mtlsgate diff OLD NEW [--format text|json|github] [--exit-code] [--allow-outside PATH]

OLD and NEW are each a compiled bundle, "-" (a bundle on standard input) or a config directory
(compiled in memory: "mtlsgate diff deployed.json config/" is the plan before deploying).
Reports who gains or loses access:
  - per API, the certificates (sha256 fingerprints, with the key each identifies) and keys
    that gained or lost access: pinned leaves, trusted CAs, certificates bound to keys on
    dynamic-mTLS APIs, keys whose access rights (or active state) now include/exclude the API;
  - APIs added, removed or changed (which fields);
  - keys added, removed or changed (policies, access rights, limits, state, credentials).
Bundles are verified (format and digest) first.

Options:
  --format text|json|github   output format (default text; json: the envelope of
                              docs/cli-conventions.md with identical, access, apis, keys;
                              github: the text, then a notice per access gained and a
                              warning per access lost)
  --exit-code                 exit 1 when the two differ (like git diff --exit-code)
  --allow-outside PATH        a config directory may read this file or directory outside it
                              (repeatable; as for mtlsgate check)

Exit status: 0 when both load (with --exit-code: and they are the same), 1 with --exit-code
when they differ, 2 when a bundle is unreadable or invalid, a config directory has errors,
or on bad usage.`;

/** A config directory that does not compile: its errors, for the JSON envelope and annotations. */
class ConfigHasErrors extends Error {
  constructor(
    message: string,
    readonly problems: Problem[],
  ) {
    super(message);
  }
}

async function compiled(dir: string, allowOutside: readonly string[]): Promise<Bundle> {
  let result;
  try {
    result = await compileDir(dir, { allowOutside });
  } catch (err) {
    if (err instanceof ConfigDirError) throw new Error(err.message);
    throw err;
  }
  if (!result.bundle) {
    const first = result.diagnostics.find((d) => d.severity === 'error');
    const where = first ? `; first: ${first.file}:${first.line}:${first.col}: ${first.code}: ${first.message}` : '';
    const problems = result.diagnostics
      .filter((d) => d.severity === 'error')
      .map((d) => ({ code: d.code, message: d.message, file: displayPath(dir, d.file), line: d.line, col: d.col }));
    throw new ConfigHasErrors(
      `config directory ${dir} has ${result.errorCount} error${result.errorCount === 1 ? '' : 's'} (mtlsgate check ${dir} lists them)${where}`,
      problems,
    );
  }
  return loadBundle(result.bundle);
}

async function readBundle(path: string, allowOutside: readonly string[]): Promise<Bundle> {
  if (path !== STDIO && statSync(path, { throwIfNoEntry: false })?.isDirectory() && !isShardedDir(path)) return compiled(path, allowOutside);
  let bytes: Buffer | undefined;
  try {
    if (!isShardedDir(path)) bytes = readInput(path, MAX_BUNDLE_BYTES);
  } catch (err) {
    throw new Error(`cannot read ${describePath(path, 'in')}: ${errnoMessage(err)}`);
  }
  try {
    return path === STDIO ? loadBundle(bytes!) : readBundleAt(path, bytes);
  } catch (err) {
    throw new Error(`${describePath(path, 'in')}: ${(err as Error).message}`);
  }
}

// ---- text rendering ----

function authMode(api: BundleApi): string {
  const token = api.use_keyless ? '' : api.use_certificate ? 'dynamic mTLS' : 'token';
  if (api.use_mutual_tls_auth) return token ? `static mTLS + ${token}` : 'static mTLS';
  return token || 'open';
}

function describeApi(api: BundleApi): string {
  return `${api.listen_path} on ${api.domain ?? 'any host'}, ${authMode(api)}`;
}

function describeKey(key: BundleKey): string {
  const certs = key.certificates.map((fp) => `certificate sha256:${fp}`);
  const credentials = [...certs, key.token_sha256 ? 'token' : ''].filter(Boolean).join(' + ');
  const apis = Object.keys(key.access_rights).sort().join(', ') || 'none';
  return `${credentials}; APIs: ${apis}${key.is_inactive ? '; inactive' : ''}`;
}

function keyLabel(key: string | null): string {
  return key ? `key ${key}` : 'no key';
}

function describeGrant(g: AccessGrant): string {
  switch (g.kind) {
    case 'pinned_certificate':
      return `certificate sha256:${g.fingerprint} (${keyLabel(g.key)}): pinned on the API`;
    case 'ca_certificate':
      return `CA sha256:${g.fingerprint} (${g.subject || 'unknown subject'}): every certificate it issued is admitted`;
    case 'key_certificate':
      return `certificate sha256:${g.fingerprint} (key ${g.key}): identifies key ${g.key} (dynamic mTLS)`;
    case 'key':
      return `key ${g.key} (${g.credentials.join(' + ') || 'no credential'}): access rights`;
  }
}

function describeRight(r: AccessRight): string {
  if (r.allowed_urls === null) return 'whole API';
  return r.allowed_urls.map((u) => `${u.url} ${u.methods.length ? u.methods.join(',') : 'any method'}`).join('; ') || 'no URL';
}

function limit(v: unknown, unit: [string, string]): string {
  if (v === null || v === undefined) return 'unlimited';
  const o = v as Record<string, number>;
  return `${o[unit[0]]} per ${o[unit[1]]}s`;
}

function json(v: unknown): string {
  return v === undefined ? 'absent' : JSON.stringify(v);
}

function describeField(c: FieldChange): string {
  if (c.field.startsWith('access_rights.')) {
    if (c.old === undefined) return `${c.field} granted (${describeRight(c.new as AccessRight)})`;
    if (c.new === undefined) return `${c.field} revoked`;
    return `${c.field} ${describeRight(c.old as AccessRight)} -> ${describeRight(c.new as AccessRight)}`;
  }
  switch (c.field) {
    case 'token_sha256':
      return c.old === null ? 'token added' : c.new === null ? 'token removed' : 'token rotated';
    case 'certificates': {
      const list = (v: unknown) => ((v as string[] | undefined) ?? []).map((fp) => `sha256:${fp}`).join(', ') || 'none';
      return `certificates ${list(c.old)} -> ${list(c.new)}`;
    }
    case 'rate':
      return `rate ${limit(c.old, ['rate', 'per'])} -> ${limit(c.new, ['rate', 'per'])}`;
    case 'quota':
      return `quota ${limit(c.old, ['max', 'renewal'])} -> ${limit(c.new, ['max', 'renewal'])}`;
    case 'client_certificates':
    case 'client_cas': {
      const before = new Set(c.old as string[]);
      const after = new Set(c.new as string[]);
      const plus = [...after].filter((x) => !before.has(x)).length;
      const minus = [...before].filter((x) => !after.has(x)).length;
      return `${c.field} +${plus} -${minus}`;
    }
    default:
      return `${c.field} ${json(c.old)} -> ${json(c.new)}`;
  }
}

function formatDiffText(d: BundleDiff, oldB: Bundle, newB: Bundle, names: [string, string]): string {
  const lines = [`${names[0]} (${oldB.digest}) -> ${names[1]} (${newB.digest})`];
  if (d.identical) {
    lines.push('no changes');
    return lines.join('\n');
  }
  if (d.access.length > 0) {
    lines.push('', 'Access');
    for (const a of d.access) {
      lines.push(`  ${a.api}`);
      for (const g of a.lost) lines.push(`    - lost    ${describeGrant(g)}`);
      for (const g of a.gained) lines.push(`    + gained  ${describeGrant(g)}`);
    }
  }
  const sections: Array<[string, BundleDiff['apis'], (id: string) => string]> = [
    ['APIs', d.apis, (id) => describeApi(newB.content.apis[id])],
    ['Keys', d.keys, (id) => describeKey(newB.content.keys[id])],
  ];
  for (const [title, items, describeAdded] of sections) {
    if (items.added.length + items.removed.length + items.changed.length === 0) continue;
    lines.push('', title);
    for (const id of items.added) lines.push(`  + ${id}: added (${describeAdded(id)})`);
    for (const id of items.removed) lines.push(`  - ${id}: removed`);
    for (const c of items.changed) lines.push(`  ~ ${c.id}: ${c.fields.map(describeField).join('; ')}`);
  }
  return lines.join('\n');
}

export const command: Command = {
  name: 'diff',
  summary: 'who gains or loses access between two bundles',
  usage,
  async run(argv) {
    const { values, positionals } = parseCommandLine(argv, {
      ...FORMAT_OPTIONS,
      'exit-code': { type: 'boolean', default: false },
      'allow-outside': { type: 'string', multiple: true },
    });
    const format = parseFormat(values);
    if (positionals.length !== 2) throw new UsageError(`expected OLD and NEW (bundles or config directories), got ${positionals.length}`);
    if (positionals[0] === STDIO && positionals[1] === STDIO) throw new UsageError('only one of OLD and NEW can be - (standard input)');
    const [oldPath, newPath] = positionals;
    let oldB: Bundle;
    let newB: Bundle;
    try {
      oldB = await readBundle(oldPath, values['allow-outside'] ?? []);
      newB = await readBundle(newPath, values['allow-outside'] ?? []);
    } catch (err) {
      // A config side that does not compile reports its own diagnostics (code, file, line), not "io".
      const problems = err instanceof ConfigHasErrors ? err.problems : [{ code: 'io', message: (err as Error).message }];
      if (format === 'json') process.stdout.write(envelope('diff', false, {}, problems));
      if (format === 'github') for (const p of problems) process.stdout.write(githubLine('error', p));
      console.error(`mtlsgate diff: ${(err as Error).message}`);
      return 2;
    }
    const d = diffBundles(oldB.content, newB.content);
    const code = values['exit-code'] && !d.identical ? 1 : 0;
    if (format === 'json') {
      process.stdout.write(envelope('diff', true, { old: { file: oldPath, digest: oldB.digest }, new: { file: newPath, digest: newB.digest }, ...d }));
      return code;
    }
    console.log(visibleLines(formatDiffText(d, oldB, newB, [describePath(oldPath, 'in'), describePath(newPath, 'in')])));
    if (format === 'github') {
      for (const a of d.access) {
        for (const g of a.lost) process.stdout.write(githubLine('warning', { code: 'access lost', message: `${a.api}: lost ${describeGrant(g)}` }));
        for (const g of a.gained) process.stdout.write(githubLine('notice', { code: 'access gained', message: `${a.api}: gained ${describeGrant(g)}` }));
      }
    }
    return code;
  },
};
