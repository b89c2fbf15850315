// Duplicate ids within a kind: the first document keeps the id, each later one gets the error
// with the first as related information (so both positions are reported).
import type { DiagnosticLog } from './diagnostics.ts';
import { locate, type SourceDoc } from './source.ts';

export function uniqueById<T extends { doc: SourceDoc; spec: { id: string } }>(items: T[], kind: string, log: DiagnosticLog): Map<string, T> {
  const byId = new Map<string, T>();
  for (const item of items) {
    const first = byId.get(item.spec.id);
    if (!first) {
      byId.set(item.spec.id, item);
      continue;
    }
    log.report('E_DUPLICATE_ID', { file: item.doc.file, offset: locate(item.doc.root, ['id']) }, `duplicate ${kind} id "${item.spec.id}"`, [
      { site: { file: first.doc.file, offset: locate(first.doc.root, ['id']) }, message: `${kind} "${item.spec.id}" first defined here` },
    ]);
  }
  return byId;
}
