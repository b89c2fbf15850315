// Two definitions with the same Tyk API id (Tyk's own repository has them: apps/jq.json and
// apps/coprocess_app_sample_protected.json are both api_id "4"; apps/ and ci/tests/tracing/apps/
// share "1" and "3"). Tyk has no rule for this: its loader routes both listen paths, but keeps
// one of them in its API register (the one policies and keys resolve against), chosen by
// listen-path length. The importer keeps the first in input order (the command line's order; a
// directory's files sorted by path), skips the later one whole, and says so with both places as
// file:line:col: the import goes on, and its exit status says it is incomplete.
import type { ImportContext } from './context.ts';
import { definitionDifferences, describeDifferences } from './definition-diff.ts';
import { lineColOfPointer } from './json-position.ts';
import { MAX_TYK_FILE_BYTES } from './sources.ts';
import { readRegularFile } from '../common/regular-file.ts';
import type { JsonObject } from './values.ts';

/** file:line:col of `pointer` in `file` (the file was read and parsed already; read again only for this rare finding). */
function position(file: string, pointer: string): { line: number; col: number } | undefined {
  try {
    return lineColOfPointer(readRegularFile(file, MAX_TYK_FILE_BYTES).toString('utf8'), pointer);
  } catch {
    return undefined; // changed or gone since it was read: the pointer still says where
  }
}

const at = (file: string, pointer: string, pos: { line: number; col: number } | undefined) => (pos ? `${file}:${pos.line}:${pos.col}` : `${file}#${pointer}`);

/**
 * Whether an API with this Tyk id was imported already; if so, reports this definition as
 * skipped (naming both, and the fields in which they differ) and the caller converts nothing of it.
 * `definition`: the classic definition, or the whole OAS document.
 */
export function skipDuplicateApi(
  ctx: ImportContext,
  tykId: string,
  file: string,
  idPointer: string,
  definition: JsonObject,
  format: 'classic' | 'oas',
): boolean {
  const first = ctx.apiIdSites.get(tykId);
  if (first === undefined) {
    ctx.apiIdSites.set(tykId, { file, pointer: idPointer, definition, format });
    return false;
  }
  const differences =
    first.format === format
      ? describeDifferences(definitionDifferences(first.definition, definition))
      : `one is a ${first.format === 'classic' ? 'classic' : 'Tyk OAS'} definition, this one ${format === 'classic' ? 'classic' : 'Tyk OAS'}: not compared field by field`;
  const here = position(file, idPointer);
  const there = position(first.file, first.pointer);
  ctx.report.skipped.push({
    file,
    pointer: idPointer,
    ...(here ?? {}),
    message:
      `API ${JSON.stringify(tykId)} is defined twice: imported from ${at(first.file, first.pointer, there)}, this definition skipped ` +
      `(Tyk keeps one definition per api_id, which one depending on its load order); ${differences}. ` +
      'Remove one of the files, or name the one to import first on the command line',
  });
  return true;
}
