// docs/security.md section 46: `--trusted-proxies` that trusts every address. With
// `--client-cert-header`, a peer in the trusted ranges is the load balancer and the header it
// sends is the client's certificate; `0.0.0.0/0` (or `::/0`, which node's BlockList also
// matches every IPv4 peer against) makes every client that reaches the gateway such a peer.
// Before, serve started on it without a word: mallory, with no certificate of its own, sent
// alice's public certificate in the header and was alice. Now serve says so at start. Real
// `mtlsgate serve`, curl.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { demoBundleFixture } from './helpers/demo-bundle.ts';
import { listenPort, spawnDemoGateway } from './helpers/demo-gateway.ts';
import { curl } from './helpers/serve-fixtures.ts';

const demo = demoBundleFixture('trusted-everyone', ['alice']);
const started: Array<ReturnType<typeof spawnDemoGateway>> = [];
after(() => {
  for (const gw of started) gw.kill();
});

async function serveTrusting(ranges: string) {
  const gw = spawnDemoGateway(demo.bundle, demo.pki, { extra: ['--client-cert-header', 'xfcc', '--trusted-proxies', ranges] });
  started.push(gw);
  const serving = await gw.serving();
  const warnings = gw.lines().filter((l) => l.level === 'warn' && String(l.msg).startsWith('--trusted-proxies'));
  return { gw, port: listenPort(serving), warnings };
}

describe('--trusted-proxies that trusts every address is warned about at start', () => {
  for (const ranges of ['0.0.0.0/0', '10.0.0.0/8,::/0', '::ffff:0:0/96']) {
    test(`${ranges}: the warning names the entry and what it means`, async () => {
      const { port, warnings } = await serveTrusting(ranges);
      const everyone = ranges.split(',').at(-1)!;
      assert.equal(warnings.length, 1, `no warning for ${ranges}`);
      assert.deepEqual(warnings[0].trusted_proxies, [everyone]);
      assert.match(String(warnings[0].msg), /trusts every address: any client that reaches the gateway is taken for the load balancer/);
      assert.match(String(warnings[0].msg), /x-forwarded-client-cert header it sends makes it whoever that certificate names/);
      // What it warns of: no client certificate in the handshake, alice's public one in the header.
      const alice = encodeURIComponent(readFileSync(join(demo.pki.dir, 'alice.pem'), 'utf8'));
      const r = await curl(`https://127.0.0.1:${port}/static/x`, demo.pki, null, ['-H', `X-Forwarded-Client-Cert: Hash=x;Cert="${alice}"`]);
      assert.equal(r.status, 200);
    });
  }

  test('held: the load balancers named by address are not warned about', async () => {
    const { warnings } = await serveTrusting('127.0.0.1/32,10.0.0.0/8,fd00::/8');
    assert.deepEqual(warnings, []);
  });
});
