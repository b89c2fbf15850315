// A sharded bundle as it arrives over the network (docs/security.md section 54): the manifest
// and its shards fetched from a URL whose server (or whoever is on the path to a plain-HTTP URL)
// answers what it likes. Each attack is published over a gateway serving a signed set (the built
// CLI, real TLS, curl): the set serving keeps serving, /health and the log line say why. The
// shard server that never ends its answers and the one that trickles bytes are run against the
// set's loader itself, with small limits (the gateway's are 512 MiB and 300 s).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { shardOf } from '../bundle/shard-of.ts';
import { readSigningKeyFile, signBundle } from '../bundle/sign.ts';
import type { ManifestContent, ShardContent } from '../bundle/types.ts';
import { encodeContent } from '../bundle/wire.ts';
import { documentDigest, serializeManifest, serializeShard } from '../bundle/write.ts';
import type { DemoPki } from '../cli/pki.ts';
import { writeShardedBundle } from '../compiler/write-sharded.ts';
import { loadShardSet, SHARD_SET_LIMITS } from '../runtime/shard-set.ts';
import { MAX_BUNDLE_BYTES } from '../common/size-limits.ts';
import { bundleContent, sha256Hex } from './helpers/bundle-builder.ts';
import { curlE2E, recordingUpstream, type RecordingUpstream, serveBundle } from './helpers/e2e.ts';
import { tempDir, waitFor } from './helpers/ops-fixtures.ts';
import { CLI, demoPki, run } from './helpers/serve-fixtures.ts';

const t = tempDir('security-shard-url');
after(() => t.cleanup());

type Route = Buffer | ((res: ServerResponse) => void);

/** An HTTP server answering from `routes` (path → bytes or a handler), 404 otherwise; counts requests per path. */
async function routedServer() {
  const routes = new Map<string, Route>();
  const hits = new Map<string, number>();
  const server = createServer((req, res) => {
    const path = new URL(req.url!, 'http://x').pathname;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const route = routes.get(path);
    if (route === undefined) return void res.writeHead(404).end();
    if (typeof route === 'function') return route(res);
    res.writeHead(200, { 'content-type': 'application/json' }).end(route);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    routes,
    hits,
    base,
    requests: () => [...hits.values()].reduce((a, b) => a + b, 0),
    close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))),
  };
}

const contentOf = <T>(doc: Buffer): T => JSON.parse(doc.toString().slice(doc.indexOf('"content":') + 10, -2)) as T;
const hexOf = (digest: string) => digest.slice('sha256:'.length);
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('attacks on a sharded bundle served from a URL, against the built CLI', () => {
  let pki: DemoPki;
  let upstream: RecordingUpstream;
  let server: Awaited<ReturnType<typeof routedServer>>;
  let elsewhere: Awaited<ReturnType<typeof routedServer>>;
  const signer = join(t.dir, 'ops');
  const oldSet = join(t.dir, 'old'); // alice switched off; signed first
  const newSet = join(t.dir, 'new'); // alice on; signed after: the set the gateway serves

  function writeConfig(dir: string, aliceInactive: boolean): string {
    const config = join(dir, 'config');
    mkdirSync(join(config, 'keys'), { recursive: true });
    writeFileSync(join(config, 'alice.pem'), readFileSync(join(pki.dir, 'alice.pem')));
    writeFileSync(
      join(config, 'api.yaml'),
      `kind: api\nid: dyn\nproxy:\n  listen_path: /dyn/\n  target_url: ${upstream.url}\nauth:\n  use_certificate: true\n`,
    );
    writeFileSync(
      join(config, 'keys', 'alice.yaml'),
      `kind: key\nid: alice\ncertificate: ../alice.pem\naccess_rights:\n  dyn: {}\n${aliceInactive ? 'is_inactive: true\n' : ''}`,
    );
    for (let i = 0; i < 40; i++)
      writeFileSync(join(config, 'keys', `k${i}.yaml`), `kind: key\nid: key-${i}\ntoken_sha256: "${sha256Hex(`token-${i}`)}"\naccess_rights:\n  dyn: {}\n`);
    return config;
  }

  async function compileSigned(dir: string, aliceInactive: boolean): Promise<void> {
    const r = await run(process.execPath, [
      CLI,
      'compile',
      writeConfig(dir, aliceInactive),
      '-o',
      join(dir, 'bundle'),
      '--shards',
      '8',
      '--sign',
      `${signer}.key`,
    ]);
    assert.equal(r.code, 0, r.stderr);
  }

  const manifestOf = (dir: string) => readFileSync(join(dir, 'bundle', 'manifest.json'));
  const shardBytes = (dir: string, digest: string) => readFileSync(join(dir, 'bundle', 'shards', `${hexOf(digest)}.json`));

  /** Every shard file of `dir` on the server (what a later manifest may name). */
  function serveShards(dir: string): void {
    for (const f of readdirSync(join(dir, 'bundle', 'shards'))) server.routes.set(`/bundle/shards/${f}`, readFileSync(join(dir, 'bundle', 'shards', f)));
  }

  /** A manifest of `content`, signed now (newer than the set serving: only what it names is wrong). */
  const signedManifest = (content: ManifestContent) => signBundle(serializeManifest(content), readSigningKeyFile(`${signer}.key`));

  before(async () => {
    pki = await demoPki(t.dir);
    upstream = await recordingUpstream();
    server = await routedServer();
    elsewhere = await routedServer();
    assert.equal((await run(process.execPath, [CLI, 'keygen', signer])).code, 0);
    await compileSigned(oldSet, true);
    await compileSigned(newSet, false);
    serveShards(oldSet);
    serveShards(newSet);
    server.routes.set('/bundle/manifest.json', manifestOf(newSet));
  });
  after(async () => {
    await server?.close();
    await elsewhere?.close();
    await upstream?.close();
  });

  test('tampered, mixed-up, doubled and misplaced shards, a rollback and a redirect are refused; the set serving serves on', async () => {
    const gw = await serveBundle(`${server.base}/bundle/manifest.json`, pki, [
      '--poll-interval',
      '200ms',
      '--allow-insecure-http-bundle',
      '--bundle-public-key',
      `${signer}.pub`,
    ]);
    const alice = async () => (await curlE2E(`${gw.base}/dyn/x`, pki, { client: 'alice' })).status;
    const health = async () =>
      (await (await fetch(`${gw.admin}/health`)).json()) as { bundle: { digest: string }; last_reload_error: { message: string } | null };
    const serving = (await health()).bundle.digest;
    /** Publishes `manifest`, waits until its refusal says `why`, and checks the set serving is the new one still. */
    const refused = async (what: string, manifest: Buffer, why: RegExp) => {
      server.routes.set('/bundle/manifest.json', manifest);
      let last: string | undefined;
      const error = await waitFor(
        what,
        async () => {
          last = (await health()).last_reload_error?.message;
          return last !== undefined && why.test(last) ? last : null;
        },
        30_000,
        50,
      ).catch((err: Error) => assert.fail(`${err.message}; the last refusal: ${last}`));
      assert.equal((await health()).bundle.digest, serving, `${what}: the set serving stays`);
      assert.equal(await alice(), 200, `${what}: alice is served by the set serving`);
      const line = gw.proc.lines().find((l) => l.msg === 'bundle refused; the previous bundle keeps serving' && l.error === error);
      assert.ok(line, `${what}: logged with its reason: ${error}`);
      return error;
    };
    try {
      assert.equal(await alice(), 200);
      const oldManifest = contentOf<ManifestContent>(manifestOf(oldSet));
      const newManifest = contentOf<ManifestContent>(manifestOf(newSet));
      const a = shardOf('alice', 8);
      const aliceOff = oldManifest.shards[a];
      assert.notEqual(aliceOff, newManifest.shards[a], "alice's shard differs between the sets");

      // A rollback: the older set, signed before the one serving, with all its shards in place.
      await refused('rollback', manifestOf(oldSet), /was signed at .*, before the bundle serving .*: an older bundle is refused \(a replay or a rollback\)/);

      // The older set signed again (newer), but what the server answers for alice's shard is not what the manifest names.
      const resigned = signedManifest(oldManifest);
      const good = shardBytes(oldSet, aliceOff);
      server.routes.set(`/bundle/shards/${hexOf(aliceOff)}.json`, Buffer.from(good.toString().replace('"alice"', '"alicf"')));
      await refused('a shard edited in transit', resigned, new RegExp(`shard ${a} digest mismatch`));
      server.routes.set(`/bundle/shards/${hexOf(aliceOff)}.json`, shardBytes(newSet, newManifest.shards[a]));
      await refused('another shard under its name', Buffer.concat([resigned, Buffer.from(' ')]), new RegExp(`shard ${a} is sha256:[0-9a-f]{12}…, not sha256:`));
      server.routes.set(`/bundle/shards/${hexOf(aliceOff)}.json`, good);

      // Shards whose digests match what the manifest names (the signer's mistake, or a forged unsigned set): their content is judged.
      const content = contentOf<ShardContent>(good);
      const doubled = serializeShard({
        ...content,
        keys: { ...content.keys, ids: [content.keys.ids[0], ...content.keys.ids], session: [content.keys.session[0], ...content.keys.session] },
      });
      server.routes.set(`/bundle/shards/${hexOf(documentDigest(doubled))}.json`, doubled);
      await refused(
        'a key listed twice',
        signedManifest({ ...oldManifest, shards: oldManifest.shards.map((d, i) => (i === a ? documentDigest(doubled) : d)) }),
        new RegExp(`shard ${a}: .*keys\\.ids.*ascending`),
      );
      // Two shards the set serving holds, named at each other's index: read again and judged, not taken as held.
      const [c, d] = [0, 1, 2, 3, 4, 5, 6, 7].filter((i) => i !== a && newManifest.shards[i] === oldManifest.shards[i]);
      assert.notEqual(oldManifest.shards[c], oldManifest.shards[d]);
      const swapped = oldManifest.shards.map((x, i) => (i === c ? oldManifest.shards[d] : i === d ? oldManifest.shards[c] : x));
      await refused('keys in the wrong shard', signedManifest({ ...oldManifest, shards: swapped }), /shard \d: key "[^"]+" belongs to shard \d/);

      // A redirect to another host, which holds the right bytes: not followed, that host never asked.
      elsewhere.routes.set(`/bundle/shards/${hexOf(aliceOff)}.json`, good);
      server.routes.set(`/bundle/shards/${hexOf(aliceOff)}.json`, (res) =>
        res.writeHead(302, { location: `${elsewhere.base}/bundle/shards/${hexOf(aliceOff)}.json` }).end(),
      );
      await refused(
        'a redirect to another host',
        signedManifest(oldManifest),
        /HTTP 302 \(a redirect to "http:\/\/127\.0\.0\.1:\d+\/bundle\/shards\/[0-9a-f]{64}\.json": not followed; a bundle and its shards are read only from the URL --bundle names\)/,
      );
      assert.equal(elsewhere.requests(), 0, 'the other host was never asked');

      // And the gateway still takes a good set after all of them.
      server.routes.set(`/bundle/shards/${hexOf(aliceOff)}.json`, good);
      server.routes.set('/bundle/manifest.json', signedManifest(oldManifest));
      await waitFor('the good set taken', async () => (await alice()) === 403, 30_000, 50);
      assert.equal((await health()).last_reload_error, null);
    } finally {
      await gw.stop();
    }
  });
});

describe("a shard server that never ends its answers, or trickles them: one ceiling and one deadline for the set's shards", () => {
  let server: Awaited<ReturnType<typeof routedServer>>;
  let sent = 0;
  /** A manifest of 200 keys in `count` shards. */
  function setOf(count: number): Buffer {
    const dir = join(t.dir, `set${count}`);
    const keys = Array.from({ length: 200 }, (_, i) => ({
      id: `key-${i}`,
      token_sha256: sha256Hex(`token-${i}`),
      access_rights: { pay: { allowed_urls: null } },
    }));
    writeShardedBundle(
      dir,
      encodeContent(bundleContent([{ id: 'pay', listen_path: '/pay/', target_url: 'http://127.0.0.1:9', use_certificate: true }], keys)),
      count,
    );
    return readFileSync(join(dir, 'manifest.json'));
  }
  before(async () => {
    server = await routedServer();
  });
  after(() => server?.close());

  const location = () => ({ kind: 'url' as const, manifestUrl: `${server.base}/bundle/manifest.json` });
  /** Every shard of `manifest` answered by `handler`. */
  function everyShard(manifest: Buffer, handler: (res: ServerResponse) => void): void {
    server.routes.clear();
    for (const d of contentOf<ManifestContent>(manifest).shards) server.routes.set(`/bundle/shards/${hexOf(d)}.json`, handler);
  }

  test('the limits a load gets: a whole bundle, for all the shards it reads together', () => {
    assert.deepEqual(SHARD_SET_LIMITS, { readTimeoutMs: 30_000, deadlineMs: 300_000, maxBytes: MAX_BUNDLE_BYTES });
  });

  test('shards that never end are refused at the ceiling of the set, not of each shard; the downloads stop there', async () => {
    // Two shards: before, each was read to 512 MiB (1 GiB in all; eight at a time with more shards).
    const manifest = setOf(2);
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    sent = 0;
    everyShard(manifest, (res) => {
      res.writeHead(200);
      const more = () => {
        while (!res.destroyed && res.write(chunk)) sent += chunk.length;
      };
      res.on('drain', more);
      more();
    });
    const limits = { readTimeoutMs: 5_000, deadlineMs: 60_000, maxBytes: 4 * 1024 * 1024 };
    await assert.rejects(
      loadShardSet(manifest, sha256(manifest), location(), new Map(), null, limits),
      /the 2 shards to read are larger than 4194304 bytes together \(the ceiling of a whole bundle\)/,
    );
    await new Promise((r) => setTimeout(r, 200));
    // The ceiling, plus what the sockets' buffers held when the downloads stopped.
    assert.ok(sent < 12 * 1024 * 1024, `${sent} bytes sent`);
  });

  test('shards that trickle a byte at a time are refused at the one deadline of the set, not one per shard', { timeout: 20_000 }, async () => {
    const manifest = setOf(16);
    everyShard(manifest, (res) => {
      res.writeHead(200, { 'content-length': '100000' });
      const timer = setInterval(() => res.write('x'), 100);
      res.on('close', () => clearInterval(timer));
    });
    const started = Date.now();
    const limits = { readTimeoutMs: 1_000, deadlineMs: 2_000, maxBytes: MAX_BUNDLE_BYTES };
    await assert.rejects(
      loadShardSet(manifest, sha256(manifest), location(), new Map(), null, limits),
      /broke off: the 16 shards to read were not all read within 2 s \(one deadline for the whole set\)/,
    );
    const took = Date.now() - started;
    // Two batches of eight: a deadline per shard would have taken at least twice the deadline.
    assert.ok(took >= 1_900 && took < 3_900, `${took} ms`);
  });
});
