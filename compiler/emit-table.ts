// The index stage for keys held as a table (compiler/key-table.ts): the same WireContent that
// compiler/emit.ts `buildWire` and bundle/wire.ts `encodeParts` make from records, value for
// value, built from columns and byte-ordered hashes. Each step below names the encodeParts
// step it stands for; test/compile-workers.test.ts compiles configs both ways and compares bytes.
import { X509Certificate } from 'node:crypto';
import type { BundleRevocation, BundleSession, CertMatch, WireContent } from '../bundle/types.ts';
import type { ResolvedApis } from './check-apis.ts';
import { buildIndex, sortedRecord } from './emit.ts';
import { compareAt, findHash, HASH_BYTES } from './hash-order.ts';
import type { KeyTable } from './key-table.ts';

const ascending = (values: string[]) => values.sort();

export function buildWireFromTable(apis: ResolvedApis, table: KeyTable, matches: ReadonlyMap<string, CertMatch>, revocation: BundleRevocation): WireContent {
  const { ids, order, rank } = table;
  const hasKeyCert = (fp: string) => findHash(table.certBytes, table.certOrder, Buffer.from(fp, 'hex'), 0) !== -1;
  const keyCertAt = (fp: string) => findHash(table.certBytes, table.certOrder, Buffer.from(fp, 'hex'), 0);

  // buildWire's notAfter map, but for the key certificates (read from the table): the APIs'
  // certificates, then CAs that neither names.
  const notAfter = new Map<string, number>();
  for (const [fp, ms] of apis.notAfter) notAfter.set(fp, Math.floor(ms / 1000));
  for (const [fp, ca] of apis.cas) {
    if (notAfter.has(fp)) continue;
    const at = keyCertAt(fp);
    if (at !== -1 && !Number.isNaN(table.certNotAfter[table.certOrder[at]])) continue;
    notAfter.set(fp, Math.floor(Date.parse(new X509Certificate(ca.pem).validTo) / 1000));
  }
  const pins = new Map<string, string[]>();
  for (const api of apis.apis.values()) {
    if (!api.use_mutual_tls_auth) continue;
    for (const fp of api.client_certificates) pins.set(fp, [...(pins.get(fp) ?? []), api.id]);
  }
  for (const list of pins.values()) list.sort();
  const index = buildIndex(apis.apis.values(), [], matches);

  // Sessions numbered by their first key in id order; expiry and inactive by id order.
  const sessionNumber = new Int32Array(table.sessions.length).fill(-1);
  const sessions: BundleSession[] = [];
  const session: number[] = new Array(table.rows);
  for (let i = 0; i < table.rows; i++) {
    const c = table.session[order[i]];
    if (sessionNumber[c] === -1) {
      sessionNumber[c] = sessions.length;
      const [access_rights, policies, quota, rate, deny] = table.sessions[c];
      const entry: BundleSession = { access_rights, policies, quota, rate };
      if (deny) entry.on_limiter_error = 'deny';
      sessions.push(entry);
    }
    session[i] = sessionNumber[c];
  }
  const expires: Record<string, string> = {};
  for (const row of [...table.expires.keys()].sort((a, b) => rank[a] - rank[b])) expires[ids[row]] = table.expires.get(row)!;
  const inactive = [...table.inactive].sort((a, b) => rank[a] - rank[b]).map((row) => ids[row]);

  // certs: the key certificates (in byte order) merged with the fingerprints only pinned.
  const pinnedBy: Record<string, string[]> = {};
  for (const fp of ascending([...pins.keys()])) pinnedBy[fp] = pins.get(fp)!;
  const pinOnly = ascending([...pins.keys()].filter((fp) => !hasKeyCert(fp)));
  const pinBytes = Buffer.from(pinOnly.join(''), 'hex');
  const total = table.certOrder.length + pinOnly.length;
  const hex = Buffer.allocUnsafe(total * HASH_BYTES);
  const certKey: number[] = new Array(total);
  const certNotAfter: (number | null)[] = new Array(total);
  let k = 0;
  let p = 0;
  for (let i = 0; i < total; i++) {
    const fromKeys = p === pinOnly.length || (k < table.certOrder.length && compareAt(table.certBytes, table.certOrder[k], pinBytes, p) < 0);
    if (fromKeys) {
      const c = table.certOrder[k++];
      table.certBytes.copy(hex, i * HASH_BYTES, c * HASH_BYTES, (c + 1) * HASH_BYTES);
      certKey[i] = rank[table.certRow[c]];
      const ms = table.certNotAfter[c];
      certNotAfter[i] = Number.isNaN(ms)
        ? notAfter.size === 0
          ? null
          : (notAfter.get(table.certBytes.toString('hex', c * HASH_BYTES, (c + 1) * HASH_BYTES)) ?? null)
        : Math.floor(ms / 1000);
    } else {
      pinBytes.copy(hex, i * HASH_BYTES, p * HASH_BYTES, (p + 1) * HASH_BYTES);
      certKey[i] = -1;
      certNotAfter[i] = notAfter.get(pinOnly[p++]) ?? null;
    }
  }
  // not_after: what the map holds outside certs (key certificates are all in certs).
  const pinSet = new Set(pinOnly);
  const others = ascending([...notAfter.keys()].filter((fp) => !pinSet.has(fp) && !hasKeyCert(fp)));
  const otherNotAfter: Record<string, number> = {};
  for (const fp of others) otherNotAfter[fp] = notAfter.get(fp)!;

  const tokenKey: number[] = new Array(table.tokenOrder.length);
  const tokenHex = Buffer.allocUnsafe(table.tokenOrder.length * HASH_BYTES);
  table.tokenOrder.forEach((t, i) => {
    table.tokenBytes.copy(tokenHex, i * HASH_BYTES, t * HASH_BYTES, (t + 1) * HASH_BYTES);
    tokenKey[i] = rank[table.tokenRow[t]];
  });

  return {
    apis: sortedRecord(apis.apis),
    cas: sortedRecord(apis.cas),
    certs: { apis: pinnedBy, hex: hex.toString('hex'), key: certKey, not_after: certNotAfter },
    keys: { expires, ids: Array.from(order, (row) => ids[row]), inactive, session },
    matches: index.matches,
    not_after: otherNotAfter,
    revocation,
    routes: index.routes,
    sessions,
    tokens: { hex: tokenHex.toString('hex'), key: tokenKey },
  };
}
