// `mtlsgate test DIR`: only the access tests (kind: test) of a config directory, one line per
// case and `N passed, N failed` at the end; exit 1 when any failed. The cases are decided by the
// gateway's own stages on the compiled bundle (access/run.ts); `check` runs the same cases.
import { runAccessTests } from '../../access/run.ts';
import { compileDir, compileText, ConfigDirError, describeFailure, displayPath, formatDiagnostics } from '../../compiler/index.ts';
import { UsageError, type Command } from '../command.ts';
import { missingCertsHint } from '../missing-certs.ts';
import { envelope, FORMAT_OPTIONS, parseFormat, Reporter } from '../report.ts';
import { parseCommandLine } from '../flags.ts';
import { readInput, STDIO } from '../io.ts';
import { MAX_CONFIG_FILE_BYTES } from '../../compiler/source.ts';
import { errnoMessage } from '../../common/errno.ts';
import { visibleLines } from '../../common/visible-text.ts';

const usage = `usage: mtlsgate test DIR|- [--format text|json|github] [--allow-outside PATH]

Runs the access tests (kind: test documents) of the config directory DIR ("-": one YAML
stream on standard input, as for mtlsgate check -) against the bundle it compiles to, with the gateway's own request stages, and prints one line per case and
"N passed, N failed". --format github annotates failing cases on a pull request; --format
json writes the envelope of docs/cli-conventions.md with passed, failed and every case.
A config without kind: test documents gets a warning: nothing was tested.
Exit status: 0 every case passed, 1 a case failed (or the config has errors), 2 usage or I/O.

Options:
  --allow-outside PATH   a file or directory outside DIR that may be read (repeatable; as for
                         mtlsgate check)`;

async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(argv, { ...FORMAT_OPTIONS, 'allow-outside': { type: 'string', multiple: true } });
  const format = parseFormat(values);
  if (positionals.length !== 1) throw new UsageError('give the config directory');
  const given = positionals[0];
  // "-": one YAML stream on standard input, as `check -` reads it (its diagnostics name <stdin>).
  const dir = given === STDIO ? '.' : given;
  const ioError = (message: string) => {
    if (format === 'json') process.stdout.write(envelope('test', false, {}, [{ code: 'io', message }]));
    console.error(`mtlsgate test: ${message}`);
    return 2;
  };
  const opts = { accessTests: runAccessTests, allowOutside: values['allow-outside'] ?? [] };
  let result;
  try {
    if (given === STDIO) {
      let text: string;
      try {
        text = readInput(STDIO, MAX_CONFIG_FILE_BYTES).toString('utf8');
      } catch (err) {
        return ioError(`standard input is not read: ${errnoMessage(err)}`);
      }
      result = await compileText(text, '<stdin>', process.cwd(), opts);
    } else result = await compileDir(dir, opts);
  } catch (err) {
    if (err instanceof ConfigDirError) return ioError(err.message);
    throw err;
  }
  const configErrors = result.diagnostics.filter((d) => d.severity === 'error' && d.code !== 'E_ACCESS_TEST');
  if (configErrors.length > 0) {
    if (format === 'json')
      process.stdout.write(
        envelope(
          'test',
          false,
          { passed: 0, failed: 0, cases: [] },
          configErrors.map((d) => ({ code: d.code, message: d.message, file: displayPath(dir, d.file), line: d.line, col: d.col })),
        ),
      );
    // A fresh clone has no examples/certs: say what to run first, as check and compile do.
    const hint = format === 'text' ? missingCertsHint(configErrors) : null;
    if (hint !== null) process.stderr.write(`${hint}\n`);
    process.stderr.write(
      formatDiagnostics({ diagnostics: configErrors, errorCount: configErrors.length, warningCount: 0 }, format === 'json' ? 'text' : format, dir),
    );
    console.error('mtlsgate test: the config has errors; no test ran');
    return 1;
  }
  const { cases, outcomes } = result.tests;
  const results = cases.map((c, i) => ({ c, o: outcomes![i] }));
  const passed = results.filter((r) => r.o.pass).length;
  const failed = results.length - passed;
  const at = (c: (typeof cases)[number]) => `${displayPath(dir, c.file)}:${c.line}:${c.col}`;
  // "0 passed, 0 failed" alone reads as a pass: a CI job pointed at the wrong directory, or a
  // config whose tests were never written, is told so.
  const report = new Reporter('test', format);
  if (cases.length === 0)
    report.warning('no_tests', `no access tests (kind: test documents) in ${given === STDIO ? 'standard input' : dir}: nothing was tested`);
  if (format === 'json') {
    const json = results.map(({ c, o }) => ({
      test: c.suite,
      name: c.name,
      file: displayPath(dir, c.file),
      line: c.line,
      col: c.col,
      pass: o.pass,
      expect: c.expect,
      actual: o.actual,
      ...(o.problem ? { problem: o.problem } : {}),
    }));
    process.stdout.write(envelope('test', failed === 0, { passed, failed, cases: json }, [], report.warnings));
  } else {
    const lines: string[] = [];
    for (const { c, o } of results) {
      if (format === 'github') {
        if (!o.pass) {
          const msg = describeFailure(c, o).replace(/%/g, '%25').replace(/\n/g, '%0A');
          lines.push(`::error file=${displayPath(dir, c.file)},line=${c.line},col=${c.col},title=E_ACCESS_TEST::${msg}`);
        }
      } else
        lines.push(
          o.pass
            ? `ok    ${c.suite}: ${c.name}`
            : `FAIL  ${c.suite}: ${c.name} (${at(c)})\n      ${describeFailure(c, o).replace(/^test "[^"]*" case "[^"]*": /, '')}`,
        );
    }
    lines.push(`${passed} passed, ${failed} failed`);
    process.stdout.write(`${visibleLines(lines.join('\n'))}\n`);
  }
  return failed > 0 ? 1 : 0;
}

export const command: Command = { name: 'test', summary: 'run the access tests (kind: test) of a config directory', usage, run };
