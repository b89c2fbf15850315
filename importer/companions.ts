// Tyk's file-based gateway stores a Tyk OAS API as two files (gateway/api_definition.go
// FromDir, isOASCompanionFile): NAME.json, the classic definition Tyk derives from the OAS
// ("is_oas": true), and its companion NAME-oas.json (NAME-mcp.json for an MCP API), the OAS
// document Tyk actually loads. Both describe one API with one id, so the importer takes the
// OAS document and sets the derived classic form aside, as Tyk does; importing both would be
// the same API twice.
import { type ImportReport, ptr } from './report.ts';
import type { Item } from './sources.ts';

const COMPANION = /-(oas|mcp)\.json$/;

export function pairOasCompanions(items: readonly Item[], report: ImportReport): Item[] {
  const byFile = new Map<string, Item>();
  for (const item of items) if (item.kind === 'classic' && item.pointer === '' && item.value.is_oas === true) byFile.set(item.file, item);
  const setAside = new Set<Item>();
  for (const item of items) {
    if (item.kind !== 'oas' || item.pointer !== '' || !COMPANION.test(item.file)) continue;
    const classic = byFile.get(item.file.replace(COMPANION, '.json'));
    if (classic === undefined) continue;
    setAside.add(classic);
    report.note(
      classic.file,
      ptr(classic.pointer, 'is_oas'),
      `the classic form Tyk derives from its companion ${item.file}: the API is imported from that OAS document (Tyk loads it from there too)`,
    );
  }
  for (const classic of byFile.values())
    if (!setAside.has(classic))
      report.note(
        classic.file,
        ptr(classic.pointer, 'is_oas'),
        'is_oas: true, but its companion OAS document (NAME-oas.json) was not given: imported from this classic form, which Tyk derives from the OAS',
      );
  return items.filter((i) => !setAside.has(i));
}
