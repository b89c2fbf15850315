// `mtlsgate compile DIR -o bundle.json` and (through runCompiler) `mtlsgate check DIR`.
// Exit 0: ok (warnings allowed); 1: config errors; 2: usage or I/O. The bundle is written
// atomically and only on success, so a failed compile leaves an existing bundle untouched.
import type { KeyObject } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { UsageError, type Command } from '../command.ts';
import { missingCertsHint } from '../missing-certs.ts';
import { keyId, readSigningKeyFile, signBundle } from '../../bundle/sign.ts';
import type { SameBytesFile } from '../../common/atomic-write.ts';
import { NotARegularFileError } from '../../common/regular-file.ts';
import { MAX_CONFIG_FILE_BYTES } from '../../compiler/source.ts';
import { writeShardedCached } from '../../compiler/sharded-output.ts';
import { parseShardCount, type ShardedWrite, writeShardedBundle } from '../../compiler/write-sharded.ts';
import { compileDir, compileText, ConfigDirError, formatDiagnostics, type CompileResult } from '../../compiler/index.ts';
import { describePath, readInput, STDIO, writeOutput } from '../io.ts';
import { count, detail, info } from '../output.ts';
import { diagnosticProblems, envelope, FORMAT_OPTIONS, parseFormat } from '../report.ts';
import { runAccessTests } from '../../access/run.ts';
import { errnoMessage } from '../../common/errno.ts';
import { parseCommandLine } from '../flags.ts';
import { watchCompile } from './compile-watch.ts';

export const sharedFlags = `  --format text|json|github   output format (default text; github = Actions annotations,
                              json = the envelope in docs/cli-conventions.md, on stdout)
  --strict                    every warning is an error (exit 1): an expiring certificate,
                              a private key beside a certificate, a key that reaches no API
  --allow-empty               an empty config (no documents, or no API) is meant: no error
  --exclude PATTERN           skip matching paths (gitignore syntax, repeatable; added to
                              the config directory's .mtlsgateignore)
  --expiry-warning-days N     warn about certificates expiring within N days (default 30)
  --timings                   print the time each compiler stage took (stderr; also -v)
  --allow-outside PATH        a file or directory outside DIR that may be read (repeatable);
                              by default every config file, certificate and CRL path must
                              resolve, symlinks followed, inside DIR`;

const usage = `usage: mtlsgate compile DIR|- -o FILE|- [--watch] [--shards N|auto] [--sign KEYFILE] [--cache DIR] [--format text|json|github] [--strict] [--allow-empty] [--exclude PATTERN] [--allow-outside PATH]

Validates the config directory DIR (every *.yaml / *.yml, recursively, except what
DIR/.mtlsgateignore or --exclude names; "-" reads one YAML stream from standard input) and
writes the bundle the runtime serves to FILE: atomically, only when there are no errors, never
over a device, a directory or a symlink to one. "-o -" writes the bundle to standard output.
Exit status: 0 ok (warnings allowed), 1 config errors, 2 usage or I/O errors.

Options:
  -o, --out FILE|-            where to write the bundle ("-": standard output)
  --watch                     compile, write FILE, then keep watching DIR (and the certificate
                              files the config reads): each change recompiles only what changed
                              and rewrites FILE with the bytes a fresh compile gives, printing one
                              line (what changed, ms, the summary); a change with errors prints
                              its diagnostics and leaves FILE as it was. Runs until SIGINT or
                              SIGTERM (exit 0). With --cache every compile is compile --cache's:
                              the first starts from the snapshot a previous compile left in the
                              cache when its checks hold (a line says why not when they do not:
                              then everything is compiled), and each writes the snapshot back.
                              Not with DIR "-", -o -, --shards or --format json|github
                              (docs/scale.md)
  --shards N|auto             write a sharded bundle into the directory -o names: manifest.json
                              and shards/<digest>.json, keys split by a hash of their id into
                              N shards (auto: ~4,000 keys a shard, 1 to 256), so that a gateway
                              serving it (serve --bundle DIR) reloads only the shards that
                              changed; only changed shard files are written, and with --cache
                              after a compile that patched the previous bundle, only the shards
                              of the changed keys are made again (docs/scale.md)
  --sign KEYFILE              sign the bundle's digest and the time now with this Ed25519
                              private key (\`mtlsgate keygen NAME\` makes one); gateways started
                              with --bundle-public-key refuse unsigned or wrongly signed bundles,
                              and bundles signed before the one they serve
  --cache DIR                 keep a compile cache in DIR (created if missing): one entry per
                              key file, so a recompile parses and resolves only the key files
                              (and certificate files) that changed; the bundle is the same
                              bytes as without it. Certificate files are taken as unchanged
                              while their size, mtime, ctime and inode are. When only key files
                              changed, the previous bundle kept in DIR/snapshot is patched, and
                              -o FILE is a hard link to DIR/snapshot/bundle.json (unless
                              signed) instead of a second copy (docs/scale.md)
${sharedFlags}`;

export const compileOptions = {
  out: { type: 'string', short: 'o' },
  ...FORMAT_OPTIONS,
  strict: { type: 'boolean', default: false },
  'allow-empty': { type: 'boolean', default: false },
  exclude: { type: 'string', multiple: true },
  'expiry-warning-days': { type: 'string', default: '30' },
  timings: { type: 'boolean', default: false },
  'allow-outside': { type: 'string', multiple: true },
  sign: { type: 'string' },
  cache: { type: 'string' },
  shards: { type: 'string' },
  watch: { type: 'boolean', default: false },
} as const;

/** Counts for the summary line and the JSON envelope. */
function countsOf(result: CompileResult) {
  // The file form: counting it does not make a record per key.
  const known = result.bundle !== null ? result.counts : undefined;
  const c = known ? null : result.wire;
  return {
    apis: known?.apis ?? (c ? Object.keys(c.apis).length : 0),
    keys: known?.keys ?? (c ? c.keys.ids.length : 0),
    // Leaves (pinned or identifying a key) and CA trust anchors; a fingerprint is never both.
    certificates: known?.certificates ?? (c ? c.certs.key.length + Object.keys(c.cas).length : 0),
    errors: result.errorCount,
    warnings: result.warningCount,
  };
}

function digestOf(bundle: Buffer | null): string | null {
  return (
    bundle
      ?.subarray(0, 200)
      .toString('utf8')
      .match(/"digest":"(sha256:[0-9a-f]{64})"/)?.[1] ?? null
  );
}

/** Compiles per argv; writes the bundle when `write` (compile), not for check. Returns the exit code. */
export async function runCompiler(argv: string[], write: boolean): Promise<number> {
  const name = write ? 'compile' : 'check';
  const { values, positionals } = parseCommandLine(argv, compileOptions);
  const format = parseFormat(values);
  if (positionals.length !== 1)
    throw new UsageError(
      positionals.length === 0
        ? 'give the config directory (or - for standard input)'
        : `one config directory, got ${positionals.length}: ${positionals.join(' ')}`,
    );
  const dir = positionals[0];
  const daysText = values['expiry-warning-days'];
  const days = Number(daysText);
  if (!/^\d+$/.test(daysText) || !Number.isSafeInteger(days))
    throw new UsageError(`--expiry-warning-days must be a whole number of days, got ${JSON.stringify(daysText)}`);
  const out = values.out;
  if (write && !out) throw new UsageError('give the bundle path with -o FILE (or -o - for standard output)');
  if (!write && out) throw new UsageError('check does not write a bundle; use compile -o FILE');
  if (out === STDIO && format !== 'text') throw new UsageError(`-o - writes the bundle to standard output, where --format ${format} writes too; use -o FILE`);

  const fail = (code: string, message: string): number => {
    if (format === 'json') process.stdout.write(envelope(name, false, { config: dir, digest: null, counts: null, diagnostics: [] }, [{ code, message }]));
    process.stderr.write(`mtlsgate ${name}: ${message}\n`);
    return 2;
  };
  if (values.watch) {
    if (!write) throw new UsageError('--watch is an option of compile (check writes nothing to rewrite)');
    if (dir === STDIO) throw new UsageError('--watch watches a config directory; give DIR, not -');
    if (out === STDIO) throw new UsageError('--watch rewrites a bundle file on each change; give it with -o FILE, not -o -');
    if (values.shards !== undefined) throw new UsageError('--watch writes a single bundle file; --shards is not supported with it');
    if (format !== 'text') throw new UsageError(`--watch prints one text line per recompile; --format ${format} is not supported with it`);
  }
  if (!write && values.cache !== undefined) throw new UsageError('--cache is an option of compile (check writes nothing)');
  if (!write && values.sign !== undefined) throw new UsageError('check does not write a bundle to sign; use compile -o FILE --sign KEYFILE');
  // The signing key is read before compiling: a bad key is found before any work.
  let signingKey: KeyObject | undefined;
  if (values.sign !== undefined) {
    try {
      signingKey = readSigningKeyFile(values.sign);
    } catch (err) {
      return fail('io', (err as Error).message);
    }
  }
  if (values.shards !== undefined) {
    if (!write) throw new UsageError('--shards is an option of compile (check writes nothing)');
    if (out === STDIO) throw new UsageError('--shards writes a directory (manifest.json and shards/); give it with -o DIR');
    if (out && statSync(out, { throwIfNoEntry: false })?.isFile())
      return fail('io', `cannot write a sharded bundle into ${out}: it is a file; -o names a directory with --shards`);
  }
  if (out && out !== STDIO) {
    const outDir = dirname(out);
    if (!existsSync(outDir) || !statSync(outDir).isDirectory()) return fail('io', `cannot write ${out}: directory ${outDir} does not exist`);
  }

  // check runs the kind: test cases on the bundle with the gateway's own stages (access/);
  // compile builds the artefact and leaves the tests to check (CI), so an urgent revocation
  // is never held up by a test that still expects the old access.
  const opts = {
    strict: values.strict,
    allowEmpty: values['allow-empty'],
    exclude: values.exclude ?? [],
    expiryWarningDays: days,
    allowOutside: values['allow-outside'] ?? [],
    ...(values.cache === undefined ? {} : { cacheDir: values.cache }),
    ...(write ? {} : { accessTests: runAccessTests }),
  };
  if (values.watch) return watchCompile({ dir, out: out!, opts, signingKey, summary: (result) => summaryOf(result, signingKey) });
  let stdinText: string | undefined;
  if (dir === STDIO) {
    try {
      stdinText = readInput(STDIO, MAX_CONFIG_FILE_BYTES).toString('utf8');
    } catch (err) {
      const large = err instanceof NotARegularFileError && err.tooLarge;
      return fail(large ? 'E_FILE_TOO_LARGE' : 'io', `standard input is not read: ${errnoMessage(err)}${large ? ' (a config file holds at most 64 MiB)' : ''}`);
    }
  }
  let result: CompileResult;
  try {
    result = stdinText !== undefined ? await compileText(stdinText, '<stdin>', process.cwd(), opts) : await compileDir(dir, opts);
  } catch (err) {
    if (err instanceof ConfigDirError) return fail('io', err.message);
    throw err;
  }
  const shownDir = dir === STDIO ? '.' : dir;
  const total = Object.values(result.timings).reduce((a, b) => a + b, 0);
  const timings = `timings: ${Object.entries(result.timings)
    .map(([stage, ms]) => `${stage} ${ms} ms`)
    .join(', ')}; total ${total} ms`;
  // Where the keys stage ran (compiler/parallel-keys.ts), and why it went back to one thread.
  const w = result.keyWorkers;
  const keysOn = `keys stage: ${w.count > 0 ? `${count(w.count, 'worker thread')}` : `main thread${w.restarted ? ` (back from worker threads: ${w.restarted})` : ''}`}`;
  // With --cache: how many key files were taken from it (the rest were parsed and resolved).
  const c = result.cache;
  const patched =
    c?.patched !== undefined
      ? `; the previous bundle patched (${count(c.patched, 'key file')} resolved again${c.unread ? `, ${c.unread} not read: known by their stat` : ''})`
      : c?.snapshotMiss
        ? `; snapshot not used: ${c.snapshotMiss}`
        : '';
  const cacheLine = c ? `\ncache: ${count(c.hits, 'key file')} from the cache, ${c.stale} stale entries${patched}` : '';
  if (values.timings) process.stderr.write(`${timings}\n${keysOn}${cacheLine}\n`);
  else {
    detail(timings);
    detail(keysOn + cacheLine);
  }
  const counts = countsOf(result);
  const digest = digestOf(result.bundle);
  const ok = result.errorCount === 0 && result.bundle !== null;
  // Signed over the digest (bundle/sign.ts): the digest and content bytes stay the same.
  if (ok && signingKey && values.shards === undefined) result.bundle = signBundle(result.bundle!, signingKey);
  // Unsigned, the bundle is the bytes the compile cache just wrote: the output is a link to them.
  const sameBytes = signingKey ? undefined : result.bundleFile;
  let shardCount = 0;
  if (ok && values.shards !== undefined) {
    const n = parseShardCount(values.shards, counts.keys);
    if (typeof n === 'string') return fail('usage', n);
    shardCount = n;
  }
  if (format === 'json') {
    const diagnostics = JSON.parse(formatDiagnostics(result, 'json', shownDir)).diagnostics;
    const body = { config: dir, ...(write ? { out } : {}), digest, counts, diagnostics };
    // Written after the bundle (below) so that "ok" is true only once the file is in place.
    if (!ok)
      process.stdout.write(
        envelope(name, false, body, diagnosticProblems(result.diagnostics, 'error', shownDir), diagnosticProblems(result.diagnostics, 'warning', shownDir)),
      );
    else if (!write) process.stdout.write(envelope(name, true, body, [], diagnosticProblems(result.diagnostics, 'warning', shownDir)));
    else if (shardCount > 0) {
      const w = writeSharded(out!, result, shardCount, signingKey, values.cache);
      if (w === null) return 2;
      process.stdout.write(
        envelope(name, true, { ...body, digest: w.digest, shards: w.shards }, [], diagnosticProblems(result.diagnostics, 'warning', shownDir)),
      );
      return 0;
    } else
      return writeBundle(
        out!,
        result.bundle!,
        () => process.stdout.write(envelope(name, true, body, [], diagnosticProblems(result.diagnostics, 'warning', shownDir))),
        sameBytes,
      );
  } else {
    // A missing certificate directory (examples/certs on a fresh clone): say what to run, first.
    const hint = format === 'text' ? missingCertsHint(result.diagnostics) : null;
    if (hint !== null) process.stderr.write(`${hint}\n`);
    const report = formatDiagnostics(result, format, shownDir);
    // GitHub reads workflow commands on stdout; text diagnostics go to stderr like a compiler's.
    if (format === 'text') process.stderr.write(report);
    else process.stdout.write(report);
  }
  if (!ok) return 1;
  if (format === 'json' && !write) return 0;

  const summary = summaryOf(result, signingKey, digest);
  if (!write) {
    info(`mtlsgate check: ${dir === STDIO ? 'standard input' : dir} ok: ${summary}`);
    return 0;
  }
  if (shardCount > 0) {
    const w = writeSharded(out!, result, shardCount, signingKey, values.cache);
    if (w === null) return 2;
    const shardSummary = summary.replace(`digest ${digest}`, `manifest digest ${w.digest}`);
    const kept = 'kept' in w ? `, ${w.kept} kept without being made again` : '';
    info(
      `mtlsgate compile: wrote ${out}/manifest.json and ${count(w.shards, 'shard')} (${w.written} written${kept}, ${w.removed} old removed): ${shardSummary}`,
    );
    return 0;
  }
  return writeBundle(out!, result.bundle!, () => info(`mtlsgate compile: wrote ${describePath(out!, 'out')}: ${summary}`), sameBytes);
}

/** "1 API, 2 keys, 2 certificates, digest sha256:...", and the tests run and the signing key. */
function summaryOf(result: CompileResult, signingKey: KeyObject | undefined, digest = digestOf(result.bundle)): string {
  const counts = countsOf(result);
  const signed = signingKey ? `, signed by key ${keyId(signingKey)}` : '';
  const ran = result.tests.outcomes !== null && result.tests.cases.length > 0 ? `, ${count(result.tests.cases.length, 'access test')} passed` : '';
  return `${count(counts.apis, 'API')}, ${count(counts.keys, 'key')}, ${count(counts.certificates, 'certificate')}, digest ${digest}${ran}${signed}`;
}

/**
 * The sharded form into directory `out` (compiler/write-sharded.ts; with --cache, shards whose
 * keys did not change are kept: compiler/sharded-output.ts); null after reporting an I/O error.
 */
function writeSharded(
  out: string,
  result: CompileResult,
  shards: number,
  signingKey: KeyObject | undefined,
  cacheDir: string | undefined,
): ShardedWrite | null {
  try {
    if (cacheDir !== undefined) {
      const compiled = { bundle: result.bundle!, wire: () => result.wire!, ...(result.keyChange ? { patch: result.keyChange } : {}) };
      return writeShardedCached(out, compiled, shards, cacheDir, signingKey);
    }
    return writeShardedBundle(out, result.wire!, shards, signingKey);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    process.stderr.write(`mtlsgate compile: cannot write ${out}: ${e.name === 'UnsafeTargetError' ? e.message : errnoMessage(e)}\n`);
    return null;
  }
}

function writeBundle(out: string, bundle: Buffer, done: () => void, same?: SameBytesFile): number {
  try {
    writeOutput(out, bundle, same);
  } catch (err) {
    const message = (err as Error).name === 'UnsafeTargetError' ? (err as Error).message : `cannot write ${out}: ${errnoMessage(err)}`;
    process.stderr.write(`mtlsgate compile: ${message}\n`);
    return 2;
  }
  done();
  return 0;
}

export const command: Command = {
  name: 'compile',
  summary: 'validate a config directory and write the bundle (-o FILE)',
  usage,
  run: (argv) => runCompiler(argv, true),
};
