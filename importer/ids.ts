// mtlsgate ids are lower-case [a-z0-9._-]; Tyk ids are anything (hex, UUIDs, names). Each Tyk id
// gets one mtlsgate id; two Tyk ids that would share one are a fatal error, never a silent merge.
import { FatalImportError } from './report.ts';

function toMtlsgateId(raw: string): string {
  return raw
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[^a-z0-9]+/, '')
    .replace(/-+$/, '');
}

/** Tyk id -> mtlsgate id, for one kind (api, policy or key). */
export class IdMap {
  private readonly byTyk = new Map<string, string>();
  private readonly taken = new Map<string, { tykId: string; file: string }>();
  constructor(private readonly kind: string) {}

  /** Registers a Tyk id; returns the mtlsgate id. Throws FatalImportError on a collision. */
  add(tykId: string, file: string, pointer: string): string {
    const id = toMtlsgateId(tykId);
    if (id === '') throw new FatalImportError(file, pointer, `${this.kind} id ${JSON.stringify(tykId)} has no letter or digit to make an mtlsgate id from`);
    const first = this.taken.get(id);
    if (first !== undefined) {
      const same =
        first.tykId === tykId ? `is defined twice (${first.file} and ${file})` : `and ${JSON.stringify(first.tykId)} (${first.file}) both become "${id}"`;
      throw new FatalImportError(file, pointer, `${this.kind} ${JSON.stringify(tykId)} ${same}`);
    }
    this.taken.set(id, { tykId, file });
    this.byTyk.set(tykId, id);
    return id;
  }

  get(tykId: string): string | undefined {
    return this.byTyk.get(tykId);
  }
}
