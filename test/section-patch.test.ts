// The compile snapshot's byte-level patch (compiler/section-patch.ts over
// compiler/bundle-sections.ts) against the live compile's patch on parsed content
// (compiler/wire-patch.ts) + serializeWire: random bundles (several sessions, tokens, expiries,
// inactive keys, integer-like ids, pinned certificates, certificate-less keys) and random key
// changes must give the same bytes, or both be refused; the old records read back from the bytes
// must be the ones the content holds. With the APIs' facts (PatchFrame: the compile snapshot's
// path), pinned certificates move between keys and pins and the revocation part is replaced: the
// bytes are then compared with encodeParts of the resulting keys (what an uncached compile writes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { BundleKey, WireContent } from '../bundle/types.ts';
import { encodeParts, expandContent } from '../bundle/wire.ts';
import { serializeWire } from '../bundle/write.ts';
import { intsJson, locateSections, parseInts } from '../compiler/bundle-sections.ts';
import { SectionedWire } from '../compiler/section-patch.ts';
import { PatchRefused, patchWire } from '../compiler/wire-patch.ts';

/** A small deterministic generator (mulberry32), so a failure names its seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const hex = (s: string) => createHash('sha256').update(s).digest('hex');

// Session parts as the compiler builds them (object keys in sorted order, as read back from JSON).
const SESSIONS = [
  { access_rights: { 'api-a': { allowed_urls: null } }, policies: ['p1'], quota: null, rate: null },
  { access_rights: { 'api-a': { allowed_urls: null }, 'api-b': { allowed_urls: null } }, policies: ['p1', 'p2'], quota: null, rate: { per: 60, rate: 100 } },
  { access_rights: {}, policies: [], quota: { max: 1000, renewal_rate: 3600 }, rate: null },
  { access_rights: { 'api-b': { allowed_urls: null } }, policies: ['p3'], quota: null, rate: null, on_limiter_error: 'deny' as const },
] as unknown as Pick<BundleKey, 'access_rights' | 'policies' | 'quota' | 'rate' | 'on_limiter_error'>[];

function randomKey(r: () => number, id: string, salt: string): BundleKey {
  const s = SESSIONS[Math.floor(r() * SESSIONS.length)]!;
  const certs = Math.floor(r() * 3);
  const key: BundleKey = {
    access_rights: s.access_rights,
    certificate_match: null,
    certificates: Array.from({ length: certs }, (_, i) => hex(`${id}/${salt}/${i}`)).sort(),
    expires: r() < 0.3 ? `2031-0${1 + Math.floor(r() * 9)}-01T00:00:00Z` : null,
    id,
    is_inactive: r() < 0.2,
    policies: s.policies,
    quota: s.quota,
    rate: s.rate,
    token_sha256: r() < 0.5 || certs === 0 ? hex(`token/${id}/${salt}`) : null,
  };
  if (s.on_limiter_error === 'deny') key.on_limiter_error = 'deny';
  return key;
}

function bundleOf(keys: BundleKey[], pins: [string, string[]][], notAfter: Map<string, number>): WireContent {
  const byId = new Map(keys.map((k) => [k.id, k]));
  return encodeParts({
    apis: {},
    cas: {},
    revocation: { crls: {}, crl_urls: [], denied: [] },
    routes: {},
    matches: {},
    keyIds: [...byId.keys()],
    keyOf: (id) => byId.get(id)!,
    pins,
    notAfter,
  });
}

function attempt<T>(run: () => T): T | 'refused' {
  try {
    return run();
  } catch (err) {
    if (err instanceof PatchRefused) return 'refused';
    throw err;
  }
}

test('integer columns: parsed and written back as JSON writes them', () => {
  for (const values of [[], [0], [-1, 0, 7, 10, 99, 100, 123456789, -1, 2147483647]]) {
    const text = JSON.stringify(values);
    const bytes = Buffer.from(`x${text}y`);
    assert.deepEqual([...parseInts(bytes, [1, 1 + text.length])], values);
    assert.equal(intsJson(Int32Array.from(values)).toString(), text);
  }
});

test('a bundle that is not laid out as the writer writes it is not read as sections', () => {
  const wire = bundleOf([], [], new Map());
  const bytes = serializeWire(wire);
  assert.ok(locateSections(bytes));
  assert.equal(locateSections(Buffer.concat([bytes.subarray(0, bytes.length - 1), Buffer.from(' \n')])), null);
  const extra = serializeWire({ ...wire, zzz: 1 } as unknown as WireContent);
  assert.equal(locateSections(extra), null);
});

test('random key changes: the byte patch gives what patchWire + serializeWire give, or both refuse', () => {
  let patched = 0;
  let refused = 0;
  for (let seed = 1; seed <= 60; seed++) {
    const r = rng(seed);
    const n = Math.floor(r() * 60);
    const ids = new Set<string>();
    // Integer-like ids too: JSON.stringify puts them first in an object (keys.expires).
    while (ids.size < n) ids.add(r() < 0.2 ? String(Math.floor(r() * 500)) : `key-${Math.floor(r() * 1000)}`);
    const keys = [...ids].map((id) => randomKey(r, id, 'a'));
    const notAfter = new Map<string, number>();
    for (const k of keys) for (const fp of k.certificates) if (r() < 0.8) notAfter.set(fp, Math.floor(r() * 1e9) * 1000);
    const allCerts = keys.flatMap((k) => k.certificates);
    // Pins: some a key's certificate, some nobody's.
    const pins: [string, string[]][] = [];
    if (allCerts.length > 0 && r() < 0.3) pins.push([allCerts[Math.floor(r() * allCerts.length)]!, ['api-a']]);
    if (r() < 0.3) pins.push([hex(`pin/${seed}`), ['api-b']]);
    const wire = bundleOf(keys, pins, notAfter);
    const bytes = serializeWire(wire);
    const sections = locateSections(bytes);
    assert.ok(sections, `seed ${seed}: sections`);

    // The records read back from the bytes are the content's.
    const content = expandContent(wire);
    const sw = new SectionedWire(sections);
    const asked = keys.filter(() => r() < 0.4).map((k) => k.id);
    const records = sw.records(asked);
    assert.ok(typeof records !== 'string');
    for (const id of asked) assert.deepEqual(records.get(id), content.keys[id], `seed ${seed}: record ${id}`);
    assert.equal(typeof sw.records(['no-such-key']), 'string');

    // Changes: keys taken out, some put back changed, new keys (sometimes reusing a removed key's certificate or token).
    const removed = keys.filter(() => r() < 0.2).map((k) => content.keys[k.id]!);
    const added: BundleKey[] = [];
    for (const k of removed) if (r() < 0.6) added.push(randomKey(r, k.id, r() < 0.5 ? 'a' : 'b'));
    const fresh = Math.floor(r() * 4);
    for (let i = 0; i < fresh; i++) added.push(randomKey(r, r() < 0.1 && keys.length > 0 ? keys[0]!.id : `new-${seed}-${i}`, 'n'));
    const addedNotAfter = new Map<string, number>();
    for (const k of added) for (const fp of k.certificates) if (r() < 0.7) addedNotAfter.set(fp, Math.floor(r() * 1e9) * 1000 + 999);

    const expected = attempt(() => serializeWire(patchWire(wire, removed, added, addedNotAfter)));
    const actual = attempt(() => new SectionedWire(locateSections(bytes)!).patch(removed, added, addedNotAfter));
    if (expected === 'refused') {
      assert.equal(actual, 'refused', `seed ${seed}: patchWire refused, the byte patch did not`);
      refused++;
      continue;
    }
    assert.notEqual(actual, 'refused', `seed ${seed}: the byte patch refused, patchWire did not`);
    if (actual === 'refused') continue;
    assert.equal(actual.bytes.toString(), expected.toString(), `seed ${seed}: bytes`);
    const w = JSON.parse(expected.toString()).content as WireContent;
    assert.deepEqual(actual.counts, { apis: 0, keys: w.keys.ids.length, certificates: w.certs.key.length });
    patched++;
  }
  // Both outcomes were exercised.
  assert.ok(patched > 20 && refused > 0, `patched ${patched}, refused ${refused}`);
});

test('with the APIs facts (PatchFrame): pinned certificates move between keys and pins, the revocation part is new; the bytes encodeParts makes of the result', async () => {
  const { canonicalJson } = await import('../bundle/write.ts');
  // One notAfter per certificate (the same DER has one), known to the APIs or the keys or both.
  const naOf = (fp: string) => (Number.parseInt(fp.slice(0, 8), 16) % 1_000_000_000) * 1000;
  const revocationA = { crl_urls: [], crls: {}, denied: [] };
  const revocationB = { crl_urls: ['https://crl.example/x.crl'], crls: {}, denied: [hex('denied')] };
  let patched = 0;
  let moved = 0;
  let livePinned = 0;
  for (let seed = 1; seed <= 80; seed++) {
    const r = rng(1000 + seed);
    const n = 1 + Math.floor(r() * 40);
    const ids = new Set<string>();
    while (ids.size < n) ids.add(`key-${Math.floor(r() * 1000)}`);
    const keys = [...ids].map((id) => randomKey(r, id, 'a'));
    const keysNa = new Map<string, number>();
    for (const k of keys) for (const fp of k.certificates) if (r() < 0.7) keysNa.set(fp, naOf(fp));
    // Pins: some keys' certificates, some nobody's; the APIs know the notAfter of some (a PEM file) and of a CA.
    const allCerts = keys.flatMap((k) => k.certificates);
    const pinned = new Set<string>();
    for (const fp of allCerts) if (r() < 0.3) pinned.add(fp);
    const lonely = Array.from({ length: Math.floor(r() * 3) }, (_, i) => hex(`lonely/${seed}/${i}`));
    for (const fp of lonely) pinned.add(fp);
    const ca = hex(`ca/${seed}`);
    const apiNotAfter = new Map<string, number>([[ca, naOf(ca)]]);
    for (const fp of pinned) if (r() < 0.5) apiNotAfter.set(fp, naOf(fp));
    const pins: [string, string[]][] = [...pinned].map((fp) => [fp, r() < 0.5 ? ['api-a'] : ['api-a', 'api-b']]);
    const merged = (na: Map<string, number>) =>
      new Map([
        ...[...apiNotAfter].map(([fp, ms]): [string, number] => [fp, Math.floor(ms / 1000)]),
        ...[...na].map(([fp, ms]): [string, number] => [fp, Math.floor(ms / 1000)]),
      ]);
    const bytes = serializeWire({ ...bundleOf(keys, pins, merged(keysNa)), revocation: revocationA });
    const content = expandContent(JSON.parse(bytes.toString()).content as WireContent);

    // Changes: keys out, some back changed, new keys; some take a pinned certificate (a lonely
    // pin, a removed key's, a kept key's: refused), rarely the CA's (refused: not handled).
    const removed = keys.filter(() => r() < 0.3).map((k) => content.keys[k.id]!);
    const added: BundleKey[] = [];
    for (const k of removed) if (r() < 0.5) added.push(randomKey(r, k.id, r() < 0.5 ? 'a' : 'b'));
    const fresh = Math.floor(r() * 4);
    for (let i = 0; i < fresh; i++) added.push(randomKey(r, `new-${seed}-${i}`, 'n'));
    const takeable = [...lonely, ...removed.flatMap((k) => k.certificates.filter((fp) => pinned.has(fp)))];
    for (const k of added) {
      const roll = r();
      if (roll < 0.35 && takeable.length > 0) k.certificates = [...new Set([...k.certificates, takeable[Math.floor(r() * takeable.length)]!])].sort();
      else if (roll < 0.4 && allCerts.length > 0) k.certificates = [...new Set([...k.certificates, allCerts[Math.floor(r() * allCerts.length)]!])].sort();
      else if (roll < 0.42) k.certificates = [...new Set([...k.certificates, ca])].sort();
    }
    const addedNa = new Map<string, number>();
    for (const k of added) for (const fp of k.certificates) if (r() < 0.6) addedNa.set(fp, naOf(fp) + 999);
    const revocation = r() < 0.3 ? revocationB : revocationA;

    // What an uncached compile of the result writes (or 'invalid': a certificate or token of two keys).
    const after = new Map(keys.map((k) => [k.id, k]));
    for (const k of removed) after.delete(k.id);
    for (const k of added) after.set(k.id, k);
    // The notAfter of the keys kept (as first compiled) and of the added ones (as resolved now).
    const addedIds = new Set(added.map((k) => k.id));
    const keptCerts = new Set([...after.values()].filter((k) => !addedIds.has(k.id)).flatMap((k) => k.certificates));
    const na = new Map([...keysNa].filter(([fp]) => keptCerts.has(fp)));
    for (const [fp, ms] of addedNa) na.set(fp, ms);
    let expected: Buffer | 'invalid';
    try {
      expected = added.some((k, i) => added.findIndex((o) => o.id === k.id) !== i)
        ? 'invalid'
        : serializeWire({ ...bundleOf([...after.values()], pins, merged(na)), revocation });
    } catch {
      expected = 'invalid';
    }
    const frame = { apiNotAfter, cas: new Set([ca]), revocation: Buffer.from(canonicalJson(revocation)) };
    const actual = attempt(() => new SectionedWire(locateSections(bytes)!).patch(removed, added, addedNa, frame));
    // The live compile's patch (patchWire) given the same facts: the same verdict and bytes (it keeps the revocation part it holds).
    const previous = JSON.parse(bytes.toString()).content as WireContent;
    const live = attempt(() => serializeWire({ ...patchWire(previous, removed, added, addedNa, frame), revocation }));
    assert.equal(live === 'refused', actual === 'refused', `seed ${seed}: patchWire and the byte patch agree on refusing`);
    if (live !== 'refused' && actual !== 'refused') {
      assert.equal(live.toString(), actual.bytes.toString(), `seed ${seed}: patchWire's bytes`);
      if ([...removed, ...added].some((k) => k.certificates.some((fp) => pinned.has(fp)))) livePinned++;
    }
    if (actual === 'refused') {
      const notHandled = added.some((k) => k.certificates.includes(ca));
      assert.ok(expected === 'invalid' || notHandled, `seed ${seed}: refused a change the patch handles`);
      continue;
    }
    assert.notEqual(expected, 'invalid', `seed ${seed}: patched a change an uncached compile refuses`);
    assert.equal(actual.bytes.toString(), expected.toString(), `seed ${seed}: bytes`);
    patched++;
    if ([...removed, ...added].some((k) => k.certificates.some((fp) => pinned.has(fp)))) moved++;
  }
  assert.ok(patched > 30 && moved > 10, `patched ${patched}, with a pinned certificate ${moved}`);
  assert.equal(livePinned, moved, 'patchWire moved every pinned certificate the byte patch moved');
});
