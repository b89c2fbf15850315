// A listen_path that no request can reach is a compile error, with the form that is reached.
// Before: "/café/", "/%7euser/", "/a//b/", "/a;x/" compiled; the gateway routes on the
// normalised request path, so each such API answered 404 for ever and nothing said why
// (found by the session-15 edge audit, docs/security.md section 45's known limits).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { listenPathVerdict } from '../compiler/listen-path.ts';
import { BAD_PATH, pathEnd, routeRequest, type RouteTables } from '../runtime/route.ts';
import { compileDir } from './helpers/compile-and-load.ts';

/** The request target a client sends for `path`: raw non-ASCII and spaces percent-encoded, as curl --path-as-is and browsers do. */
function asSent(path: string): string {
  return [...path].map((ch) => ((ch.codePointAt(0) as number) > 0x7e || ch === ' ' ? encodeURIComponent(ch) : ch)).join('');
}

/** The API on `listenPath` (as the bundle would hold it) is where a request to `listenPath` + "x" goes. */
function reaches(listenPath: string): boolean {
  const key = listenPath.endsWith('/') ? listenPath : `${listenPath}/`;
  const tables: RouteTables<string> = { byHost: new Map(), anyHost: new Map([[key, 'the api']]) };
  const target = `${asSent(key)}x`;
  const routed = routeRequest(tables, 'gw.test', target.slice(0, pathEnd(target)));
  return routed !== undefined && routed !== BAD_PATH && routed.api === 'the api';
}

test('check names the listen_path no request reaches, at its line and column, and the form that is reached', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'listen-path-'));
  try {
    mkdirSync(join(dir, 'apis'));
    const paths = ['/café/', '/%7euser/', '/a//b/', '/a;x/', '/%2Fx/', '/ok/', '/caf%C3%A9/'];
    paths.forEach((listenPath, i) =>
      writeFileSync(
        join(dir, 'apis', `a${i}.yaml`),
        `kind: api\nid: a${i}\nuse_keyless: true\nproxy:\n  listen_path: "${listenPath}"\n  target_url: http://127.0.0.1:9/\n`,
      ),
    );
    const result = await compileDir(dir);
    const errors = result.diagnostics.filter((d) => d.severity === 'error').map((d) => `${d.file.split('/').pop()}:${d.line}:${d.col} ${d.code} ${d.message}`);
    assert.deepEqual(errors.sort(), [
      'a0.yaml:5:16 E_FIELD_VALUE listen_path "/caf\\u00e9/" never matches a request: the gateway routes on the normalised request path; write "/caf%C3%A9/"',
      'a1.yaml:5:16 E_FIELD_VALUE listen_path "/%7euser/" never matches a request: the gateway routes on the normalised request path; write "/~user/"',
      'a2.yaml:5:16 E_FIELD_VALUE listen_path "/a//b/" never matches a request: the gateway routes on the normalised request path; write "/a/b/"',
      'a3.yaml:5:16 E_FIELD_VALUE listen_path "/a;x/" holds ";" (path parameters), which the gateway refuses in every request path (400 request.bad_path)',
      'a4.yaml:5:16 E_FIELD_VALUE listen_path "/%2Fx/" holds an escaped "/" (%2F), which the gateway refuses in every request path (400 request.bad_path)',
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the verdict agrees with the gateway: an accepted listen_path is reached, a refused one is not, and the form offered is reached', () => {
  const piece = fc.constantFrom(
    'a',
    'B',
    'x-1',
    '~',
    '%7e',
    '%7E',
    '%41',
    '%61',
    'é',
    '%C3%A9',
    '%c3%a9',
    '€',
    '%E2%82%AC',
    ' ',
    '%20',
    '.',
    '..',
    '...',
    '/',
    '//',
    '%2F',
    '%5c',
    ';',
    '%',
    '%zz',
    '%FF',
    '%C3',
    '{id}',
    ':',
    '@',
    '!',
    '%EF%BC%8F',
    '%E2%88%95',
    '%00',
    '\t',
    '#',
    '?',
  );
  fc.assert(
    fc.property(fc.array(piece, { minLength: 1, maxLength: 6 }), (pieces) => {
      const listenPath = `/${pieces.join('')}`;
      const verdict = listenPathVerdict(listenPath);
      if (verdict.ok) {
        assert.ok(reaches(listenPath), `${listenPath} is accepted but no request reaches it`);
        return;
      }
      assert.ok(!reaches(listenPath), `${listenPath} is refused (${verdict.reason}) but a request reaches it`);
      if (verdict.write !== undefined) {
        assert.deepEqual(listenPathVerdict(verdict.write), { ok: true }, `${listenPath}: the form offered, ${verdict.write}, is refused`);
        assert.ok(reaches(verdict.write), `${listenPath}: the form offered, ${verdict.write}, is not reached`);
      }
    }),
    { numRuns: 3000 },
  );
});
