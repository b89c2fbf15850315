// How many header fields a request may carry (docs/security.md section 57): 128, pseudo-header
// fields not counted, over HTTP/1.1 and HTTP/2 alike; one more is 431 request.too_many_fields.
// Before, node:http2 reset the stream of a request with more than 128 fields counting the
// pseudo-header fields (124 of the client's own), and node:http kept 2,000 fields and dropped
// the rest unseen. Real clients: curl over HTTP/1.1 and HTTP/2.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { curl } from './helpers/gateway-fixtures.ts';
import { gatewayTestHooks, keylessOpenBundle } from './helpers/config-gateway.ts';

/** `count` fields x-field-N: N, as curl arguments. */
function fields(count: number): string[] {
  const args: string[] = [];
  for (let i = 0; i < count; i++) args.push('-H', `x-field-${i}: ${i}`);
  return args;
}

describe('header fields per request: the same limit over HTTP/1.1 and HTTP/2', () => {
  const t = gatewayTestHooks(({ echo }) => keylessOpenBundle(echo));

  for (const [version, flag] of [
    ['HTTP/1.1', '--http1.1'],
    ['HTTP/2', '--http2'],
  ] as const) {
    it(`${version}: 128 fields of the client's own reach the upstream, every one; 129 and 300 are 431 request.too_many_fields and reach nothing (before: HTTP/2 reset 128, HTTP/1.1 passed 300)`, async () => {
      // curl adds Host (HTTP/1.1 only), User-Agent and Accept: count them in.
      const own = version === 'HTTP/1.1' ? 3 : 2;
      const ok = await curl(t.pki, t.gw.port, `/fields/${version}/128`, { extra: [flag, ...fields(128 - own)] });
      assert.equal(ok.status, 200);
      assert.equal(ok.json.headers?.['x-field-0'], '0');
      assert.equal(ok.json.headers?.[`x-field-${127 - own}`], String(127 - own));
      for (const count of [129, 300]) {
        const path = `/fields/${version}/${count}`;
        const refused = await curl(t.pki, t.gw.port, path, { extra: [flag, ...fields(count - own)] });
        assert.equal(refused.status, 431, `${count} fields`);
        assert.equal(refused.json.code, 'request.too_many_fields');
        const record = t.gw.records.find((r) => r.path === path);
        assert.equal(record?.code, 'request.too_many_fields');
      }
    });
  }
});
