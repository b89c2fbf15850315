// `mtlsgate import tyk FILE|DIR... -o OUT_DIR`: Tyk API definitions, policies and key sessions
// to mtlsgate YAML (importer/), then `check` on the result. Nothing is written when an input
// is fatal; the files are staged beside OUT_DIR and renamed into place in one step.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { runAccessTests } from '../../access/run.ts';
import { compileDir, displayPath, formatDiagnostics } from '../../compiler/index.ts';
import { FatalImportError, type Finding, formatFindings, importTyk, type OutFile } from '../../importer/index.ts';
import { count } from '../../common/count.ts';
import { visibleLines } from '../../common/visible-text.ts';
import { UsageError, type Command } from '../command.ts';
import { refuseStdout } from '../io.ts';
import { envelope, FORMAT_OPTIONS, githubLine, parseFormat, type Problem } from '../report.ts';
import { parseCommandLine } from '../flags.ts';

const usage = `usage: mtlsgate import tyk FILE|DIR... -o OUT_DIR [--strict] [--convert-white-lists] [--certs DIR] [--allow-outside PATH] [--format text|json|github]

Converts Tyk API definitions (classic JSON and Tyk OAS with x-tyk-api-gateway), policies
and key sessions into mtlsgate YAML under OUT_DIR (apis/, policies/, keys/), prints every
Tyk field it could not convert (file#/json/pointer: why), then checks OUT_DIR.
A DIR is searched for *.json (and tyk.conf, for hash_keys and path matching).
OUT_DIR must not exist or be empty. Nothing is written when an input cannot be imported.
Exit status: 0 imported and checked ok, 1 the output has config errors or the import is
incomplete (a second definition of an API id was skipped), or under --strict a Tyk setting
that narrowed access was not converted, 2 usage, I/O or an input that cannot be imported.

Options:
  -o, --out OUT_DIR   where to write the YAML
  --strict            exit 1 when anything that narrowed access in Tyk was not converted
                      (marked [access wider than in Tyk] in the report: path lists, IP
                      lists, internal APIs, versions, limits, ...): CI fails instead of
                      importing a wider config. The check's warnings stay warnings
                      (mtlsgate check --strict OUT_DIR for those)
  --convert-white-lists  a version's extended_paths.white_list becomes allowed_urls on every
                      policy and key that grants the API (intersected with their own); each
                      converted list comes with a kind: test document (tests/) proving the
                      listed paths get Tyk's answers. Where it cannot be expressed, it stays
                      reported (docs/import-tyk.md)
  --certs DIR         the PEM files of the client certificates Tyk names by id (any file
                      names under DIR: each is matched by its SHA-256, the hex a Tyk
                      certificate id ends with). Each mTLS API's tests/mtls-<api>.yaml then
                      presents the pinned and key certificates; without it, only the
                      refusals are tested and the report names the ids to supply
  --allow-outside PATH  a certificate file (or a directory of them) outside the inputs'
                      directories that may be read and copied into OUT_DIR/certs/
                      (repeatable; a definition naming /etc/tyk/certs/a.pem needs
                      --allow-outside /etc/tyk/certs). Other absolute paths are not read
  --format text|json|github  text (default); json: the envelope of docs/cli-conventions.md
                      with counts, not_converted and notes ({file, pointer, message}) and the
                      check's diagnostics; github: a warning annotation per field not converted`;

function writeAll(out: string, files: OutFile[]): void {
  const parent = dirname(resolve(out));
  mkdirSync(parent, { recursive: true });
  const stage = mkdtempSync(join(parent, `.${basename(out)}.import-`));
  try {
    for (const f of files) {
      const p = join(stage, f.path);
      mkdirSync(dirname(p), { recursive: true });
      writeFileSync(p, f.text);
    }
    if (existsSync(out)) rmdirSync(out); // empty: checked before
    renameSync(stage, out);
  } catch (err) {
    rmSync(stage, { recursive: true, force: true });
    throw err;
  }
}

/** A finding as JSON: where (file and RFC 6901 pointer; line and col when known), why, and whether access is wider for it. */
const findingJson = (f: Finding) => ({
  file: f.file,
  pointer: f.pointer,
  ...(f.line !== undefined ? { line: f.line, col: f.col } : {}),
  message: f.message,
  ...(f.wider ? { wider: true } : {}),
});
/** The mark on a drop that leaves the imported config granting more than Tyk did. */
const WIDER_MARK = 'access wider than in Tyk';
/** A finding that fails the import, as an envelope or annotation problem. */
const findingProblem = (code: string, f: Finding): Problem => ({
  code,
  message: `${f.pointer || '/'}: ${f.message}`,
  file: f.file,
  ...(f.line !== undefined ? { line: f.line, col: f.col } : {}),
});

async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(argv, {
    out: { type: 'string', short: 'o' },
    'allow-outside': { type: 'string', multiple: true },
    strict: { type: 'boolean' },
    'convert-white-lists': { type: 'boolean' },
    certs: { type: 'string' },
    ...FORMAT_OPTIONS,
  });
  const format = parseFormat(values);
  const [source, ...inputs] = positionals;
  if (source !== 'tyk') throw new UsageError(source === undefined ? 'give the source format: tyk' : `unknown source ${JSON.stringify(source)}: only tyk`);
  if (inputs.length === 0) throw new UsageError('give the Tyk files or directories to import');
  const out = values.out;
  if (!out) throw new UsageError('give the output directory with -o OUT_DIR');
  refuseStdout(out, 'a directory of YAML files (apis/, policies/, keys/)', 'a new or empty directory: -o OUT_DIR');
  const failed = (problem: Problem, text: string): number => {
    if (format === 'json') process.stdout.write(envelope('import', false, { out, counts: null, not_converted: [], notes: [], diagnostics: [] }, [problem]));
    else {
      console.error(visibleLines(text));
      if (format === 'github') process.stdout.write(githubLine('error', problem));
    }
    return 2;
  };
  if (existsSync(out) && readdirSync(out).length > 0)
    return failed(
      { code: 'io', message: `${out} is not empty; give a new or empty directory` },
      `mtlsgate import: ${out} is not empty; give a new or empty directory`,
    );

  let result;
  try {
    result = importTyk(inputs, {
      allowOutside: values['allow-outside'] ?? [],
      convertWhiteLists: values['convert-white-lists'] === true,
      ...(values.certs !== undefined ? { certs: values.certs } : {}),
    });
  } catch (err) {
    if (err instanceof FatalImportError)
      return failed(
        { code: 'fatal', message: `${err.file}#${err.pointer}: ${err.message}; nothing written`, file: err.file },
        `${err.file}#${err.pointer}: fatal: ${err.message}\nmtlsgate import: nothing written`,
      );
    throw err;
  }
  try {
    writeAll(out, result.files);
  } catch (err) {
    return failed({ code: 'io', message: `cannot write ${out}: ${(err as Error).message}` }, `mtlsgate import: cannot write ${out}: ${(err as Error).message}`);
  }
  const c = result.counts;
  const strict = values.strict === true;
  // As `check` does: the generated access tests (tests/) run, and a case that fails is an error.
  const checked = await compileDir(out, { accessTests: runAccessTests });
  const wider = result.drops.filter((d) => d.wider);
  // The import's own verdict: a skipped definition always fails it; a widening drop only under --strict.
  const failures: Problem[] = [
    ...result.skipped.map((f) => findingProblem('skipped', f)),
    ...(strict ? wider.map((f) => findingProblem('wider_than_tyk', f)) : []),
  ];
  const failed1 = checked.errorCount > 0 || failures.length > 0;
  if (format === 'json') {
    const problems = (severity: 'error' | 'warning') =>
      checked.diagnostics
        .filter((d) => d.severity === severity)
        .map((d) => ({ code: d.code, message: d.message, file: displayPath(out, d.file), line: d.line, col: d.col }));
    const body = {
      out,
      strict,
      counts: { apis: c.apis, policies: c.policies, keys: c.keys, inactive_keys: c.inactiveKeys, certificate_files: c.certificates, test_files: c.tests },
      skipped: result.skipped.map(findingJson),
      not_converted: result.drops.map(findingJson),
      notes: result.notes.map(findingJson),
      diagnostics: JSON.parse(formatDiagnostics(checked, 'json', out)).diagnostics,
    };
    process.stdout.write(envelope('import', !failed1, body, [...failures, ...problems('error')], problems('warning')));
    return failed1 ? 1 : 0;
  }

  const pending = c.inactiveKeys > 0 ? ` (${c.inactiveKeys} commented out: ${c.inactiveKeys === 1 ? 'it needs' : 'they need'} a new token)` : '';
  const copied =
    (c.certificates > 0 ? `, ${count(c.certificates, 'certificate file')} (certs/)` : '') +
    (c.tests > 0 ? `, ${count(c.tests, 'access test file')} (tests/)` : '');
  const lines = [
    `mtlsgate import tyk: wrote ${count(c.apis, 'API')}, ${count(c.policies, 'policy', 'policies')}, ${count(c.keys, 'key')}${pending}${copied} to ${out}`,
  ];
  if (result.skipped.length > 0) lines.push(`skipped, the import is incomplete (${result.skipped.length}):`, formatFindings(result.skipped).trimEnd());
  if (result.drops.length > 0) {
    // Each drop that leaves access wider than in Tyk says so at its end (what --strict fails on).
    const marked = result.drops.map((d) => (d.wider ? { ...d, message: `${d.message} [${WIDER_MARK}]` } : d));
    const of = wider.length > 0 ? `, ${wider.length} of them marked [${WIDER_MARK}]` : '';
    lines.push(`not converted (${result.drops.length}${of}):`, formatFindings(marked).trimEnd());
  }
  if (result.notes.length > 0) lines.push(`notes (${result.notes.length}):`, formatFindings(result.notes).trimEnd());
  // Names and values from the Tyk files (an API's name, an id): hidden characters as \uXXXX.
  process.stdout.write(`${visibleLines(lines.join('\n'))}\n`);
  // In a pull request, each field not converted is a warning on its Tyk file (an error when it fails the import).
  if (format === 'github') {
    for (const f of result.skipped) process.stdout.write(githubLine('error', findingProblem('skipped', f)));
    for (const f of result.drops)
      process.stdout.write(
        githubLine(strict && f.wider ? 'error' : 'warning', { code: 'not_converted', message: `${f.pointer || '/'}: ${f.message}`, file: f.file }),
      );
  }

  if (format === 'github') process.stdout.write(formatDiagnostics(checked, 'github', out));
  else process.stderr.write(formatDiagnostics(checked, 'text', out));
  if (checked.errorCount > 0) console.error(`mtlsgate check: ${out}: ${count(checked.errorCount, 'error')}`);
  else console.error(`mtlsgate check: ${out} ok (${count(checked.warningCount, 'warning')})`);
  // The generated tests (tests/) ran: say so, a failed case is an E_ACCESS_TEST error above.
  const ran = checked.tests.outcomes;
  if (ran !== null && ran.length > 0)
    console.error(`mtlsgate check: access tests: ${ran.filter((o) => o.pass).length} passed, ${ran.filter((o) => !o.pass).length} failed`);
  if (result.skipped.length > 0) console.error(`mtlsgate import: incomplete: ${count(result.skipped.length, 'definition')} skipped`);
  if (strict && wider.length > 0) console.error(`mtlsgate import: --strict: ${count(wider.length, 'Tyk setting')} that narrowed access not converted`);
  return failed1 ? 1 : 0;
}

export const command: Command = { name: 'import', summary: 'convert Tyk API definitions, policies and keys to YAML (import tyk)', usage, run };
