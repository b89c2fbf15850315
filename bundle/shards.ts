// The sharded form of a bundle: the same content as one `WireContent`, split so that a change
// to a few keys changes a few files. shard i holds the keys with shardOf(id, N) = i (bundle/
// shard-of.ts), their interned sessions, certificate_match rules, certificates and token
// hashes; the manifest holds everything else (APIs, CAs, routes, revocation, pins no key uses)
// and the digest of every shard, so the manifest's digest (and its signature) covers the set.
//
// On disk (compile -o DIR --shards N): DIR/manifest.json and DIR/shards/<digest hex>.json.
// Shard files are named by their content, so a new set is written beside the old one and the
// manifest swapped last: a reader never sees half a set. A reader reads the manifest, then only
// the shards whose digest it does not hold yet (runtime/shard-source.ts).
//
// `splitWire` and `mergeShards` are exact inverses (test/bundle-shards.test.ts): a sharded
// bundle says exactly what the single-file bundle of the same config says.
import { BundleError } from './bundle-error.ts';
import type { BundleSession, ManifestContent, ShardContent, WireContent } from './types.ts';
import { hexAt, hexCount } from './wire.ts';
import { shardOf } from './shard-of.ts';

/** The manifest's content without the shard digests (known once the shards are serialised). */
export type ManifestBase = Omit<ManifestContent, 'shards'>;

function emptyShard(): ShardContent {
  return {
    matches: {},
    sessions: [],
    keys: { ids: [], session: [], expires: {}, inactive: [] },
    certs: { hex: '', key: [], not_after: [], apis: {} },
    tokens: { hex: '', key: [] },
  };
}

/** Splits verified wire content into `count` shards and the manifest's small parts. */
export function splitWire(w: WireContent, count: number): { base: ManifestBase; shards: ShardContent[] } {
  const shards = Array.from({ length: count }, emptyShard);
  const ids = w.keys.ids;
  const shardOfRow = new Int32Array(ids.length);
  const localRow = new Int32Array(ids.length);
  // Sessions are interned per shard in the order of the shard's first key using each: the
  // global rule (first key by id) restricted to the shard, so the split is deterministic.
  const localSession = shards.map(() => new Map<number, number>());
  for (let i = 0; i < ids.length; i++) {
    const s = shardOf(ids[i], count);
    const shard = shards[s];
    shardOfRow[i] = s;
    localRow[i] = shard.keys.ids.length;
    shard.keys.ids.push(ids[i]);
    const g = w.keys.session[i];
    let l = localSession[s].get(g);
    if (l === undefined) {
      localSession[s].set(g, (l = shard.sessions.length));
      shard.sessions.push(w.sessions[g]);
    }
    shard.keys.session.push(l);
  }
  for (const id of Object.keys(w.keys.expires).sort()) shards[shardOf(id, count)].keys.expires[id] = w.keys.expires[id];
  for (const id of w.keys.inactive) shards[shardOf(id, count)].keys.inactive.push(id);
  for (const id of Object.keys(w.matches).sort()) shards[shardOf(id, count)].matches[id] = w.matches[id];

  const base: ManifestBase = {
    apis: w.apis,
    cas: w.cas,
    revocation: w.revocation,
    routes: w.routes,
    not_after: w.not_after,
    matches: {},
    sessions: [],
    keys: { ids: [], session: [], expires: {}, inactive: [] },
    certs: { hex: '', key: [], not_after: [], apis: {} },
    tokens: { hex: '', key: [] },
  };
  const certHex: string[][] = shards.map(() => []);
  const pinHex: string[] = [];
  for (let i = 0; i < w.certs.key.length; i++) {
    const fp = hexAt(w.certs.hex, i);
    const k = w.certs.key[i];
    const to = k < 0 ? base.certs : shards[shardOfRow[k]].certs;
    (k < 0 ? pinHex : certHex[shardOfRow[k]]).push(fp);
    to.key.push(k < 0 ? -1 : localRow[k]);
    to.not_after.push(w.certs.not_after[i]);
    if (Object.hasOwn(w.certs.apis, fp)) to.apis[fp] = w.certs.apis[fp];
  }
  base.certs.hex = pinHex.join('');
  const tokenHex: string[][] = shards.map(() => []);
  for (let i = 0; i < w.tokens.key.length; i++) {
    const k = w.tokens.key[i];
    tokenHex[shardOfRow[k]].push(hexAt(w.tokens.hex, i));
    shards[shardOfRow[k]].tokens.key.push(localRow[k]);
  }
  for (let s = 0; s < count; s++) {
    shards[s].certs.hex = certHex[s].join('');
    shards[s].tokens.hex = tokenHex[s].join('');
  }
  return { base, shards };
}

/** Entries of several sorted hex tables, merged into one sorted table. */
interface HexEntry {
  hex: string;
  shard: number;
  index: number;
}

/**
 * Throws when a value of `sorted` is in two parts: each shard's table is strictly ascending
 * (shape.ts), but two shards could hold the same certificate (the runtime refuses that too:
 * runtime/shard-set.ts), which would give one certificate two keys.
 */
function refuseTwice(sorted: HexEntry[], what: string): void {
  const part = (s: number) => (s < 0 ? 'the manifest' : `shard ${s}`);
  for (let i = 1; i < sorted.length; i++)
    if (sorted[i].hex === sorted[i - 1].hex)
      throw new BundleError(`bundle shape: ${what} ${sorted[i].hex} is in ${part(sorted[i - 1].shard)} and in ${part(sorted[i].shard)}: it identifies one key`);
}

/** The single `WireContent` a manifest and its (verified) shards stand for. */
export function mergeShards(manifest: ManifestBase, shards: ShardContent[]): WireContent {
  const rows: { id: string; shard: number; local: number }[] = [];
  shards.forEach((sh, s) => sh.keys.ids.forEach((id, local) => rows.push({ id, shard: s, local })));
  rows.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const globalRow = shards.map((sh) => new Int32Array(sh.keys.ids.length));
  rows.forEach((r, g) => {
    globalRow[r.shard][r.local] = g;
  });
  // Sessions interned by value in the order of the first key (by id) using each: the writer's rule.
  const sessionIndex = new Map<string, number>();
  const sessions: BundleSession[] = [];
  const session = rows.map((r) => {
    const s = shards[r.shard].sessions[shards[r.shard].keys.session[r.local]];
    const text = JSON.stringify([s.access_rights, s.policies, s.quota, s.rate, s.on_limiter_error ?? null]);
    let g = sessionIndex.get(text);
    if (g === undefined) {
      sessionIndex.set(text, (g = sessions.length));
      sessions.push(s);
    }
    return g;
  });
  // No prototype: a shard's own "__proto__" entry is copied as an entry, never taken as a prototype.
  const expires: Record<string, string> = Object.create(null);
  const inactive: string[] = [];
  const matches: WireContent['matches'] = Object.create(null);
  for (const sh of shards) {
    Object.assign(expires, sh.keys.expires);
    inactive.push(...sh.keys.inactive);
    Object.assign(matches, sh.matches);
  }
  const sortedRecord = <T>(r: Record<string, T>): Record<string, T> => Object.fromEntries(Object.entries(r).sort((a, b) => (a[0] < b[0] ? -1 : 1)));

  const certEntries: HexEntry[] = [];
  const addCerts = (hex: string, shard: number) => {
    for (let i = 0; i < hexCount(hex); i++) certEntries.push({ hex: hexAt(hex, i), shard, index: i });
  };
  addCerts(manifest.certs.hex, -1);
  shards.forEach((sh, s) => addCerts(sh.certs.hex, s));
  certEntries.sort((a, b) => (a.hex < b.hex ? -1 : 1));
  refuseTwice(certEntries, 'certificate');
  const certs: WireContent['certs'] = { hex: certEntries.map((e) => e.hex).join(''), key: [], not_after: [], apis: {} };
  const apis: Record<string, string[]> = {};
  for (const e of certEntries) {
    const table = e.shard < 0 ? manifest.certs : shards[e.shard].certs;
    const local = table.key[e.index];
    certs.key.push(local < 0 ? -1 : globalRow[e.shard][local]);
    certs.not_after.push(table.not_after[e.index]);
    if (Object.hasOwn(table.apis, e.hex)) apis[e.hex] = table.apis[e.hex];
  }
  certs.apis = apis;
  const tokenEntries: HexEntry[] = [];
  shards.forEach((sh, s) => {
    for (let i = 0; i < hexCount(sh.tokens.hex); i++) tokenEntries.push({ hex: hexAt(sh.tokens.hex, i), shard: s, index: i });
  });
  tokenEntries.sort((a, b) => (a.hex < b.hex ? -1 : 1));
  refuseTwice(tokenEntries, 'token hash');
  return {
    apis: manifest.apis,
    cas: manifest.cas,
    revocation: manifest.revocation,
    routes: manifest.routes,
    not_after: manifest.not_after,
    matches: sortedRecord(matches),
    sessions,
    keys: { ids: rows.map((r) => r.id), session, expires: sortedRecord(expires), inactive: inactive.sort() },
    certs,
    tokens: { hex: tokenEntries.map((e) => e.hex).join(''), key: tokenEntries.map((e) => globalRow[e.shard][shards[e.shard].tokens.key[e.index]]) },
  };
}
