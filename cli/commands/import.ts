// `mtlsgate import tyk FILE|DIR... -o OUT_DIR`: Tyk API definitions, policies and key sessions
// to mtlsgate YAML (importer/), then `check` on the result. Nothing is written when an input
// is fatal; the files are staged beside OUT_DIR and renamed into place in one step.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { compileDir, formatDiagnostics } from '../../compiler/index.ts';
import { FatalImportError, formatFindings, importTyk, type OutFile } from '../../importer/index.ts';
import { UsageError, type Command } from '../command.ts';

const usage = `usage: mtlsgate import tyk FILE|DIR... -o OUT_DIR

Converts Tyk API definitions (classic JSON and Tyk OAS with x-tyk-api-gateway), policies
and key sessions into mtlsgate YAML under OUT_DIR (apis/, policies/, keys/), prints every
Tyk field it could not convert (file#/json/pointer: why), then checks OUT_DIR.
A DIR is searched for *.json (and tyk.conf, for hash_keys and path matching).
OUT_DIR must not exist or be empty. Nothing is written when an input cannot be imported.
Exit status: 0 imported and checked ok, 1 the output has config errors, 2 usage, I/O or an
input that cannot be imported.

Options:
  -o, --out OUT_DIR   where to write the YAML`;

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

async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { out: { type: 'string', short: 'o' } } });
  const [source, ...inputs] = positionals;
  if (source !== 'tyk') throw new UsageError(source === undefined ? 'give the source format: tyk' : `unknown source ${JSON.stringify(source)}: only tyk`);
  if (inputs.length === 0) throw new UsageError('give the Tyk files or directories to import');
  const out = values.out;
  if (!out) throw new UsageError('give the output directory with -o OUT_DIR');
  if (existsSync(out) && readdirSync(out).length > 0) {
    console.error(`mtlsgate import: ${out} is not empty; give a new or empty directory`);
    return 2;
  }

  let result;
  try {
    result = importTyk(inputs);
  } catch (err) {
    if (err instanceof FatalImportError) {
      console.error(`${err.file}#${err.pointer}: fatal: ${err.message}\nmtlsgate import: nothing written`);
      return 2;
    }
    throw err;
  }
  try {
    writeAll(out, result.files);
  } catch (err) {
    console.error(`mtlsgate import: cannot write ${out}: ${(err as Error).message}`);
    return 2;
  }
  const c = result.counts;
  const pending = c.inactiveKeys > 0 ? ` (${c.inactiveKeys} commented out: they need a new token)` : '';
  const lines = [`mtlsgate import tyk: wrote ${c.apis} APIs, ${c.policies} policies, ${c.keys} keys${pending} to ${out}`];
  if (result.drops.length > 0) lines.push(`not converted (${result.drops.length}):`, formatFindings(result.drops).trimEnd());
  if (result.notes.length > 0) lines.push(`notes (${result.notes.length}):`, formatFindings(result.notes).trimEnd());
  process.stdout.write(`${lines.join('\n')}\n`);

  const checked = await compileDir(out);
  process.stderr.write(formatDiagnostics(checked, 'text', out));
  if (checked.errorCount > 0) {
    console.error(`mtlsgate check: ${out}: ${checked.errorCount} errors`);
    return 1;
  }
  console.error(`mtlsgate check: ${out} ok (${checked.warningCount} warning${checked.warningCount === 1 ? '' : 's'})`);
  return 0;
}

export const command: Command = { name: 'import', summary: 'convert Tyk API definitions, policies and keys to YAML (import tyk)', usage, run };
