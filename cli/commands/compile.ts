// `mtlsgate compile DIR -o bundle.json` and (through runCompiler) `mtlsgate check DIR`.
// Exit 0: ok (warnings allowed); 1: config errors; 2: usage or I/O. The bundle is written
// atomically and only on success, so a failed compile leaves an existing bundle untouched.
import { existsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { UsageError, type Command } from '../command.ts';
import { missingCertsHint } from '../missing-certs.ts';
import { compileDir, ConfigDirError, formatDiagnostics, writeFileAtomic, type OutputFormat } from '../../compiler/index.ts';
import { runAccessTests } from '../../access/run.ts';

export const sharedFlags = `  --format text|json|github   diagnostics format (default text; github = Actions annotations)
  --strict                    a certificate PEM that also holds a private key is an error, not a warning
  --expiry-warning-days N     warn about certificates expiring within N days (default 30)
  --timings                   print the time each compiler stage took (stderr)`;

const usage = `usage: mtlsgate compile DIR -o FILE [--format text|json|github] [--strict] [--expiry-warning-days N]

Validates the config directory DIR (every *.yaml / *.yml, recursively) and writes the bundle
the runtime serves to FILE (atomically; only when there are no errors).
Exit status: 0 ok (warnings allowed), 1 config errors, 2 usage or I/O errors.

Options:
  -o, --out FILE              where to write the bundle
${sharedFlags}`;

/** Compiles per argv; writes the bundle when `write` (compile), not for check. Returns the exit code. */
export async function runCompiler(argv: string[], write: boolean): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      out: { type: 'string', short: 'o' },
      format: { type: 'string', default: 'text' },
      strict: { type: 'boolean', default: false },
      'expiry-warning-days': { type: 'string', default: '30' },
      timings: { type: 'boolean', default: false },
    },
  });
  if (positionals.length !== 1)
    throw new UsageError(positionals.length === 0 ? 'give the config directory' : `one config directory, got ${positionals.length}: ${positionals.join(' ')}`);
  const dir = positionals[0];
  const format = values.format as OutputFormat;
  if (!['text', 'json', 'github'].includes(format)) throw new UsageError(`--format must be text, json or github, got ${JSON.stringify(values.format)}`);
  const days = Number(values['expiry-warning-days']);
  if (!/^\d+$/.test(values['expiry-warning-days']!) || !Number.isSafeInteger(days))
    throw new UsageError(`--expiry-warning-days must be a whole number of days, got ${JSON.stringify(values['expiry-warning-days'])}`);
  const out = values.out;
  if (write && !out) throw new UsageError('give the bundle path with -o FILE');
  if (!write && out) throw new UsageError('check does not write a bundle; use compile -o FILE');
  if (out) {
    const outDir = dirname(out);
    if (!existsSync(outDir) || !statSync(outDir).isDirectory()) {
      console.error(`mtlsgate compile: cannot write ${out}: directory ${outDir} does not exist`);
      return 2;
    }
  }

  let result;
  try {
    // check runs the kind: test cases on the bundle with the gateway's own stages (access/);
    // compile builds the artefact and leaves the tests to check (CI), so an urgent revocation
    // is never held up by a test that still expects the old access.
    result = await compileDir(dir, { strict: values.strict, expiryWarningDays: days, ...(write ? {} : { accessTests: runAccessTests }) });
  } catch (err) {
    if (err instanceof ConfigDirError) {
      console.error(`mtlsgate ${write ? 'compile' : 'check'}: ${err.message}`);
      return 2;
    }
    throw err;
  }
  if (values.timings) {
    const total = Object.values(result.timings).reduce((a, b) => a + b, 0);
    console.error(
      `timings: ${Object.entries(result.timings)
        .map(([stage, ms]) => `${stage} ${ms} ms`)
        .join(', ')}; total ${total} ms`,
    );
  }
  // A missing certificate directory (examples/certs on a fresh clone): say what to run, first.
  const hint = format === 'text' ? missingCertsHint(result.diagnostics) : null;
  if (hint !== null) console.error(hint);
  const report = formatDiagnostics(result, format, dir);
  // Machine formats go to stdout (GitHub reads workflow commands there; json is for piping);
  // text diagnostics go to stderr like a compiler's.
  if (format === 'text') process.stderr.write(report);
  else process.stdout.write(report);
  if (result.errorCount > 0 || !result.content || !result.bundle) return 1;

  const c = result.content;
  // Leaves (pinned or identifying a key) and CA trust anchors; a fingerprint is never both.
  const certs = Object.keys(c.index.certs).length + Object.keys(c.cas).length;
  const digest =
    result.bundle
      .subarray(0, 200)
      .toString('utf8')
      .match(/"digest":"(sha256:[0-9a-f]{64})"/)?.[1] ?? '';
  const summary = `${Object.keys(c.apis).length} APIs, ${Object.keys(c.keys).length} keys, ${certs} certificates, digest ${digest}${result.tests.outcomes !== null && result.tests.cases.length > 0 ? `, ${result.tests.cases.length} access tests passed` : ''}`;
  if (write) {
    try {
      writeFileAtomic(out!, result.bundle);
    } catch (err) {
      console.error(`mtlsgate compile: cannot write ${out}: ${(err as Error).message}`);
      return 2;
    }
    console.error(`mtlsgate compile: wrote ${out}: ${summary}`);
  } else {
    console.error(`mtlsgate check: ${dir} ok: ${summary}`);
  }
  return 0;
}

export const command: Command = {
  name: 'compile',
  summary: 'validate a config directory and write the bundle (-o FILE)',
  usage,
  run: (argv) => runCompiler(argv, true),
};
