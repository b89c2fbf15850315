// The shards a patched compile (compiler/snapshot-compile.ts) changed, made from the new bundle's
// bytes without parsing its other keys. A shard's content is a function of its own keys'
// records (and of the APIs' pins, which a patched compile never changes: its context is the
// previous one), so a shard none of whose keys was taken out or put in has the bytes and digest
// it had: only the shards of the changed key ids are made again. At 1,000,000 keys, parsing the
// whole bundle (~1 s), splitting it (~1.2 s) and serialising all 245 shards (~1.5 s) cost more
// than the patched compile itself.
//
// The touched shards come from `splitWire` itself (bundle/shards.ts), run on the bundle restricted
// to their keys: splitWire reads rows in id order and table entries in hex order, and a
// restriction keeps both orders, so shard i of the restriction is shard i of the whole. The
// restriction also keeps every certificate no key uses (the manifest's pins), so its `base` is
// the whole bundle's.
import type { ManifestBase } from '../bundle/shards.ts';
import { splitWire } from '../bundle/shards.ts';
import { hashString, shardOf } from '../bundle/shard-of.ts';
import type { ShardContent, WireContent } from '../bundle/types.ts';
import { locateSections, parsePart, type ScalarColumn } from './bundle-sections.ts';
import { SectionedWire } from './section-patch.ts';

export interface ReusedSplit {
  base: ManifestBase;
  /** Per shard: its new content, or null when none of its keys changed (the previous file stays). */
  shards: (ShardContent | null)[];
}

/** FNV-1a of key id `i` read from its bytes (shard-of.ts hashes UTF-16 code units: the same for ASCII); -1 if not plain ASCII. */
function idHash(ids: ScalarColumn, i: number): number {
  const b = ids.b;
  const end = ids.starts[i + 1]! - 2;
  let h = 0x811c9dc5;
  for (let j = ids.starts[i]! + 1; j < end; j++) {
    const c = b[j]!;
    // An escape or a non-ASCII byte: the id's code units are not its bytes.
    if (c === 92 || c >= 0x80) return -1;
    h ^= c;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * The manifest base and the contents of the shards (among `count`) holding any of `changedIds`,
 * made from `bundle` (the new bundle file); null when its bytes are not laid out as this build
 * writes them (the caller then splits the parsed content).
 */
export function splitChanged(bundle: Buffer, count: number, changedIds: Iterable<string>): ReusedSplit | null {
  const sections = locateSections(bundle);
  if (sections === null) return null;
  const w = new SectionedWire(sections);
  const touched = new Uint8Array(count);
  for (const id of changedIds) touched[shardOf(id, count)] = 1;

  // The rows of the touched shards, ascending, and each row's place in the restriction.
  const { ids, session } = w;
  const subRow = new Int32Array(ids.length).fill(-1);
  const keyIds: string[] = [];
  const keySession: number[] = [];
  for (let i = 0; i < ids.length; i++) {
    let h = idHash(ids, i);
    const escaped = h < 0 ? (JSON.parse(ids.text(i)) as string) : undefined;
    if (escaped !== undefined) h = hashString(escaped);
    // shardOf(id, count), from the hash of the id's bytes (no string made for the rows skipped).
    if (touched[h % count] === 0) continue;
    subRow[i] = keyIds.length;
    keyIds.push(escaped ?? ids.string(i));
    keySession.push(session[i]!);
  }
  const kept = new Set(keyIds);
  const only = <T>(r: Record<string, T>): Record<string, T> => {
    const out: Record<string, T> = {};
    for (const id of Object.keys(r)) if (kept.has(id)) out[id] = r[id]!;
    return out;
  };

  // Certificates of those keys, and those of no key (pins), in table (hex) order.
  const { certs, certKey, notAfter, pins, tokens, tokenKey } = w;
  const certHex: string[] = [];
  const sub: WireContent['certs'] = { hex: '', key: [], not_after: [], apis: {} };
  for (let i = 0; i < certKey.length; i++) {
    const k = certKey[i]!;
    if (k >= 0 && subRow[k] === -1) continue;
    const fp = certs.at(i);
    certHex.push(fp);
    sub.key.push(k < 0 ? -1 : subRow[k]!);
    const text = notAfter.text(i);
    sub.not_after.push(text === 'null' ? null : Number(text));
    if (Object.hasOwn(pins, fp)) sub.apis[fp] = pins[fp]!;
  }
  sub.hex = certHex.join('');
  const tokenHex: string[] = [];
  const tokenRows: number[] = [];
  for (let i = 0; i < tokenKey.length; i++) {
    const k = tokenKey[i]!;
    if (subRow[k] === -1) continue;
    tokenHex.push(tokens.at(i));
    tokenRows.push(subRow[k]!);
  }

  const restricted: WireContent = {
    apis: parsePart(sections, 'apis'),
    cas: parsePart(sections, 'cas'),
    revocation: parsePart(sections, 'revocation'),
    routes: parsePart(sections, 'routes'),
    not_after: w.others,
    matches: only(w.matches),
    // All sessions: splitWire interns, per shard, the ones its keys use.
    sessions: w.sessions,
    keys: { ids: keyIds, session: keySession, expires: only(w.expires), inactive: w.inactive.filter((id) => kept.has(id)) },
    certs: sub,
    tokens: { hex: tokenHex.join(''), key: tokenRows },
  };
  const { base, shards } = splitWire(restricted, count);
  return { base, shards: shards.map((s, i) => (touched[i] === 1 ? s : null)) };
}
