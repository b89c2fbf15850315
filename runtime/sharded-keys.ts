// Key lookups over a sharded bundle (runtime/shard-set.ts): a key id hashes to its shard
// (bundle/shard-of.ts); a fingerprint or token hash goes through the routing table to its shard
// and entry (runtime/shard-routing.ts). Each is O(1): one to three hash-slot probes.
import { shardOf } from '../bundle/shard-of.ts';
import { mergeShards } from '../bundle/shards.ts';
import { BUNDLE_FORMAT, type Bundle, type BundleKey } from '../bundle/types.ts';
import { expandContent } from '../bundle/wire.ts';
import type { CompactBundle } from './bundle-worker-compact.ts';
import { CompactKeys } from './compact-keys.ts';
import { type ExpiryList, mergedExpiryOf } from './expiry-list.ts';
import { hashHex } from './hash-slots.ts';
import { entryIndex, entryShard, findInRouting, type ShardRouting } from './shard-routing.ts';

/** A sharded bundle being served: the manifest's compact form, its shards (in order), the routing. */
export interface ShardSet {
  base: CompactBundle;
  digests: string[];
  shards: CompactBundle[];
  routing: ShardRouting;
}

const readers = new WeakMap<CompactBundle, CompactKeys>();

function readerOf(c: CompactBundle): CompactKeys {
  let r = readers.get(c);
  if (r === undefined) readers.set(c, (r = new CompactKeys(c)));
  return r;
}

export class ShardedKeys {
  readonly shards: CompactKeys[];
  readonly base: CompactKeys;
  readonly count: number;

  constructor(private readonly set: ShardSet) {
    // A reload shares every unchanged shard: its reader (and the Set of inactive ids it holds) too.
    this.shards = set.shards.map(readerOf);
    this.base = new CompactKeys(set.base);
    this.count = this.shards.reduce((n, s) => n + s.count, 0);
  }

  key(id: string): BundleKey | undefined {
    return this.shards[shardOf(id, this.shards.length)].key(id);
  }

  keyIdByCert(fingerprint: string): string | undefined {
    if (fingerprint.length !== 64) return undefined;
    const e = findInRouting(this.set.routing, 'cert', hashHex(fingerprint), (x) => this.shards[entryShard(x)].fingerprintAt(entryIndex(x)) === fingerprint);
    return e < 0 ? undefined : this.shards[entryShard(e)].keyIdOfCert(entryIndex(e));
  }

  keyIdByToken(sha256Hex: string): string | undefined {
    if (sha256Hex.length !== 64) return undefined;
    const e = findInRouting(this.set.routing, 'token', hashHex(sha256Hex), (x) => this.shards[entryShard(x)].tokenHashAt(entryIndex(x)) === sha256Hex);
    return e < 0 ? undefined : this.shards[entryShard(e)].keyIdOfToken(entryIndex(e));
  }

  /** Every shard's expiry list, then the manifest's (pins and CAs), read in place (runtime/expiry-list.ts). */
  expiry(): ExpiryList {
    const lists = [...this.set.shards, this.set.base].map((c, i) => {
      const reader = i < this.shards.length ? this.shards[i] : this.base;
      return { times: c.expiryTimes, fingerprint: (e: number) => reader.expiringAt(e) };
    });
    return mergedExpiryOf(lists);
  }

  /** The certificate_match rules of every shard's keys (the snapshot indexes them at build). */
  matches(): CompactBundle['matches'] {
    const all: CompactBundle['matches'] = {};
    for (const c of this.set.shards) Object.assign(all, c.matches);
    return all;
  }

  /** The first key problem a shard's worker found, or null. */
  keyError(): string | null {
    for (const c of this.set.shards) if (c.keyError !== null) return c.keyError;
    return null;
  }

  /** The whole bundle as one parsed bundle (slow: every key; for callers that need it all). */
  toBundle(): Bundle {
    const b = this.set.base;
    const wire = mergeShards(
      this.base.toWire(),
      this.shards.map((s) => s.toWire()),
    );
    return { format: BUNDLE_FORMAT, digest: b.digest, signature: b.signature, content: expandContent(wire) };
  }
}
