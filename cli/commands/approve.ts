// `mtlsgate approve KEY_ID`: turns on a portal key that waits for approval.
import { statSync } from 'node:fs';
import { UsageError, type Command } from '../command.ts';
import { bundleOut, CONFIG_OUT_OPTIONS, parseCommandLine } from '../flags.ts';
import { diagnosticProblems, FORMAT_OPTIONS, parseFormat, Reporter } from '../report.ts';
import { approveKey, type ApproveResult } from '../../portal/approve-key.ts';
import { compilerFor, type CompileFn } from '../../portal/compile.ts';
import { readSigningKeyFile } from '../../bundle/sign.ts';
import { formatDiagnostics } from '../../compiler/index.ts';

const usage = `usage: mtlsgate approve KEY_ID --config DIR [-o OUT] [--sign KEYFILE] [--allow-outside PATH] [--format text|json|github]

Approves a key requested in the portal for a plan with require_approval: true: sets
is_inactive: false in DIR/keys/portal/KEY_ID.yaml (comments kept), recompiles DIR and, with
-o OUT, writes the bundle the gateway watches. If the config does not compile, the key file
is left as it was.

Options:
  --config DIR     the config directory holding keys/portal/KEY_ID.yaml
  -o, --out OUT    the bundle to rewrite (--bundle OUT, the old spelling, still works)
  --sign KEYFILE   sign the bundle with this Ed25519 private key (as compile --sign)
  --allow-outside PATH
                   a file or directory outside DIR that may be read (repeatable; as
                   compile --allow-outside)
  --format text|json|github
                   json: the envelope of docs/cli-conventions.md with "key_id", "config",
                   "out", "outcome" (approved, already_active, or why not: bad_id,
                   no_such_key, not_a_key, config_errors, io), "bundle_written" and
                   "diagnostics" (the compiler's, as check prints them, when the config
                   does not compile; its errors are the envelope's errors)

Exit status: 0 approved (or already active), 1 no such key or config errors, 2 bad
arguments or I/O errors.`;

/** The envelope's error code for an approval that did not go through. */
const ERROR_CODE: Partial<Record<ApproveResult['outcome'], string>> = { bad_id: 'usage', no_such_key: 'no_such_key', not_a_key: 'not_a_key', io: 'io' };

export const command: Command = {
  name: 'approve',
  summary: 'turn on a portal key that waits for approval',
  usage,
  async run(argv) {
    const { values, positionals } = parseCommandLine(argv, {
      ...CONFIG_OUT_OPTIONS,
      sign: { type: 'string' },
      'allow-outside': { type: 'string', multiple: true },
      ...FORMAT_OPTIONS,
    });
    const format = parseFormat(values);
    values.bundle = bundleOut(values);
    if (positionals.length !== 1)
      throw new UsageError(positionals.length === 0 ? 'expected the KEY_ID to approve' : `expected one KEY_ID, got ${positionals.length}`);
    if (!values.config) throw new UsageError('--config DIR is required');
    const report = new Reporter('approve', format);
    const body = { key_id: positionals[0], config: values.config, out: values.bundle ?? null };
    const ioError = (message: string) => {
      report.error('io', message);
      report.finish({ ...body, outcome: 'io', bundle_written: false, diagnostics: [] });
      return 2;
    };
    if (!statSync(values.config, { throwIfNoEntry: false })?.isDirectory()) return ioError(`${values.config} is not a directory`);
    let compile: CompileFn;
    try {
      compile = compilerFor({
        signingKey: values.sign === undefined ? undefined : readSigningKeyFile(values.sign),
        allowOutside: values['allow-outside'] ?? [],
      });
    } catch (err) {
      return ioError((err as Error).message);
    }
    const result = await approveKey(values.config, positionals[0], values.bundle, compile);
    const outcome = { ...body, outcome: result.outcome, bundle_written: result.bundleWritten === true };
    if (result.code === 0) {
      if (format === 'json') report.finish({ ...outcome, diagnostics: [] });
      else console.log(`mtlsgate approve: ${result.message}`);
      return 0;
    }
    if (result.compiled === undefined) {
      report.error(ERROR_CODE[result.outcome] ?? result.outcome, result.message);
      report.finish({ ...outcome, diagnostics: [] });
      return result.code;
    }
    // The config does not compile: its diagnostics, as check and compile report them.
    const compiled = result.compiled;
    if (format === 'json') {
      const diagnostics = JSON.parse(formatDiagnostics(compiled, 'json', values.config)).diagnostics;
      report.errors.push(...diagnosticProblems(compiled.diagnostics, 'error', values.config));
      report.warnings.push(...diagnosticProblems(compiled.diagnostics, 'warning', values.config));
      report.finish({ ...outcome, diagnostics });
    } else {
      process.stderr.write(`mtlsgate approve: ${result.message}\n`);
      const diagnostics = formatDiagnostics(compiled, format, values.config);
      // GitHub reads workflow commands on stdout; text diagnostics go to stderr, as check writes them.
      if (format === 'github') process.stdout.write(diagnostics);
      else process.stderr.write(diagnostics);
    }
    return result.code;
  },
};
