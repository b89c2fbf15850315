// The live state a worker's full compile hands to the main thread (compiler/full-compile-client.ts),
// in slices. One message of the whole state (at 20,000 key files ~40 MB serialized: every file's
// text, every key file's keys, the merged map) is one structured clone on the main thread, and
// that held the portal's event loop 0.3-0.8 s at the end of its start-up compile. Sliced, each
// message is its own turn of the event loop: the files' texts and the key files' results
// PER_SLICE at a time, then the rest, where the merged key map is the ids in order (each key
// object is then the one its file's result holds, as in the compile) and every diagnostic a key
// file's result holds is named by (file, index), so it is that very object again (buildState
// tells a key file's diagnostics from the others by identity).
import type { BundleKey } from '../bundle/types.ts';
import type { FileKeysState } from './cached-keys.ts';
import type { Diagnostic } from './diagnostics.ts';
import type { LiveCapture } from './live-state.ts';
import type { SourceFile } from './source.ts';

/** Files, or key files' results, per message. */
const PER_SLICE = 1000;

export type HandoffSlice = { type: 'files'; files: SourceFile[] } | { type: 'perFile'; entries: [string, FileKeysState][] };

/** A diagnostic, or where a key file's result holds it. */
type DiagnosticRef = Diagnostic | [file: string, index: number];

/** What follows the slices: the capture without what they carried. */
export interface HandoffRest {
  capture: Omit<LiveCapture, 'files' | 'perFile' | 'diagnostics' | 'keys'> & { keys: Omit<LiveCapture['keys'], 'keys'> };
  /** The merged map's ids in its order; keys no file's result holds come whole. */
  keyOrder: string[];
  strayKeys: BundleKey[];
  diagnostics: DiagnosticRef[];
  /** The result's diagnostics, the same way. */
  resultDiagnostics: DiagnosticRef[];
}

/** Worker side: posts the slices, and returns the rest (null: a state this does not slice, sent whole). */
export function sliceCapture(c: LiveCapture, resultDiagnostics: Diagnostic[], post: (slice: HandoffSlice) => void): HandoffRest | null {
  const merged = c.keys.keys;
  if (!(merged instanceof Map)) return null;
  for (let i = 0; i < c.files.length; i += PER_SLICE) post({ type: 'files', files: c.files.slice(i, i + PER_SLICE) });
  const entries = [...c.perFile];
  for (let i = 0; i < entries.length; i += PER_SLICE) post({ type: 'perFile', entries: entries.slice(i, i + PER_SLICE) });
  const held = new Set<BundleKey>();
  const where = new Map<Diagnostic, [string, number]>();
  for (const [abs, r] of entries) {
    for (const k of r.keys) held.add(k);
    r.diagnostics.forEach((d, i) => where.set(d, [abs, i]));
  }
  const { files: _files, perFile: _perFile, diagnostics, keys, ...capture } = c;
  const { keys: _merged, ...keysRest } = keys;
  return {
    capture: { ...capture, keys: keysRest },
    keyOrder: [...merged.keys()],
    strayKeys: [...merged.values()].filter((k) => !held.has(k)),
    diagnostics: diagnostics.map((d) => where.get(d) ?? d),
    resultDiagnostics: resultDiagnostics.map((d) => where.get(d) ?? d),
  };
}

/** Main-thread side: the slices as they come, then the capture as the worker's compile made it. */
export class CaptureAssembly {
  private readonly files: SourceFile[] = [];
  private readonly perFile = new Map<string, FileKeysState>();

  add(slice: HandoffSlice): void {
    if (slice.type === 'files') for (const f of slice.files) this.files.push(f);
    else for (const [abs, r] of slice.entries) this.perFile.set(abs, r);
  }

  finish(rest: HandoffRest): { capture: LiveCapture; resultDiagnostics: Diagnostic[] } {
    const byId = new Map<string, BundleKey>();
    for (const r of this.perFile.values()) for (const k of r.keys) byId.set(k.id, k);
    for (const k of rest.strayKeys) byId.set(k.id, k);
    const keys = new Map(rest.keyOrder.map((id) => [id, byId.get(id)!]));
    const resolve = (d: DiagnosticRef): Diagnostic => (Array.isArray(d) ? this.perFile.get(d[0])!.diagnostics[d[1]]! : d);
    const capture: LiveCapture = {
      ...rest.capture,
      files: this.files,
      perFile: this.perFile,
      keys: { ...rest.capture.keys, keys },
      diagnostics: rest.diagnostics.map(resolve),
    };
    return { capture, resultDiagnostics: rest.resultDiagnostics.map(resolve) };
  }
}
