// Unicode symbols that a backend folds into a character that changes a path (docs/security.md
// section 45, after sections 37 and 40): checked against Microsoft's own best-fit tables, every
// mapping of the 15 Windows ANSI code pages (unicode.org MAPPINGS/VENDORS/MICSFT/WindowsBestFit,
// WCTABLE) to "/", "\", ".", "%", "?", "#", ";", ":", space, tab, CR or LF, and every code point
// NFKC folds to text holding one of them. Before, "¿" (U+00BF, "?" in code pages 932 and 950),
// U+0589 and U+2236 (":" in 1250, 1252, 1254), U+066A ("%") and code page 874's U+25CB, U+25D9,
// U+266A (tab, LF, CR) were forwarded as sent.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildBundle } from './helpers/bundle-builder.ts';
import { gatewayTestHooks, openAndAdminApis } from './helpers/config-gateway.ts';
import { codeOf, http1Once, http2Once } from './helpers/one-request.ts';
import { decide } from '../runtime/stages/decide.ts';

const setup = gatewayTestHooks(({ echo }) => buildBundle(openAndAdminApis(echo)));

/** Code point -> the ASCII Windows' best fit turns it into, and the code pages that do (generated from the WCTABLEs). */
const BEST_FIT: Array<[number, string, string]> = [
  [0x00a5, '\\', '932'],
  [0x00b4, '/', '1253'],
  [0x00bf, '?', '1250 932 950'],
  [0x037e, ';', '1250 1252 1253'],
  [0x0589, ':', '1250 1252 1254'],
  [0x066a, '%', '1250 1252 1254'],
  [0x2000, ' ', '1250 1252 1254'],
  [0x2001, ' ', '1250 1252 1254'],
  [0x2002, ' ', '1250 1252 1254'],
  [0x2003, ' ', '1250 1252 1254'],
  [0x2004, ' ', '1250 1252 1254'],
  [0x2005, ' ', '1250 1252 1254'],
  [0x2006, ' ', '1250 1252 1254'],
  [0x2044, '/', '1250 1252 1254'],
  [0x20a9, '\\', '1361 949'],
  [0x2215, '/', '1250 1252 1254'],
  [0x2216, '\\', '1250 1252 1254'],
  [0x2236, ':', '1250 1252 1254'],
  [0x25cb, '\t', '874'],
  [0x25d9, '\n', '874'],
  [0x266a, '\r', '874'],
  [0x3000, ' ', '1250 1252 1254'],
  [0xff03, '#', 'every single-byte page'],
  [0xff05, '%', 'every single-byte page'],
  [0xff0e, '.', 'every single-byte page'],
  [0xff0f, '/', 'every single-byte page'],
  [0xff1a, ':', 'every single-byte page'],
  [0xff1b, ';', 'every single-byte page'],
  [0xff1f, '?', 'every single-byte page'],
  [0xff3c, '\\', 'every single-byte page'],
];

/** "%XX%XX..." of a code point's UTF-8. */
const escaped = (cp: number) => encodeURIComponent(String.fromCodePoint(cp));

/** explain's verdict (the gateway's route stage) for GET `path`: the refusal's code, or "ok". */
function verdict(path: string): string {
  return decide(setup.gw.snapshot(), { method: 'GET', host: 'localhost', path }, null, Date.now()).refusal?.code ?? 'ok';
}

test('every best-fit mapping to "/", "\\", ".", "%", "?", "#", ";", ":", a space, tab, CR or LF is refused wherever it stands', () => {
  const passed: string[] = [];
  for (const [cp, ascii, pages] of BEST_FIT) {
    for (const path of [`/x/${escaped(cp)}`, `/x${escaped(cp)}y/z`, `/${escaped(cp)}admin/x`])
      if (verdict(path) !== 'request.bad_path') passed.push(`U+${cp.toString(16).toUpperCase()} (${JSON.stringify(ascii)} in ${pages}): ${path}`);
  }
  assert.deepEqual(passed, []);
});

test('over the wire: the look-alikes of "?", ":", "%" and CR/LF get 400 request.bad_path (HTTP/1.1 and HTTP/2)', async () => {
  for (const cp of [0x00bf, 0x2236, 0x0589, 0x066a, 0x266a, 0x25d9, 0x25cb, 0xff0f, 0x2215, 0x2044, 0xff0e, 0x2024]) {
    const path = `/x/web.config${escaped(cp)}${escaped(cp)}$DATA`;
    const h1 = await http1Once(setup.pki, setup.gw.port, path, 'Host: localhost\r\n');
    assert.equal(h1.status, 400, `HTTP/1.1 ${path}`);
    assert.equal(codeOf(h1.body), 'request.bad_path');
    const h2 = await http2Once(setup.pki, setup.gw.port, { ':path': path });
    assert.equal(h2.status, 400, `HTTP/2 ${path}`);
  }
});

test('every code point whose NFKC form holds "/", "\\", ".", "%", "?", "#", ";", ":" or whitespace is refused (all of Unicode)', () => {
  const passed: string[] = [];
  let checked = 0;
  for (let cp = 0xa0; cp <= 0x10ffff; cp++) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue; // surrogates: not UTF-8 (section 35)
    const folded = String.fromCodePoint(cp).normalize('NFKC');
    if (!/[/\\.%?#;:\s]/.test(folded) || folded === String.fromCodePoint(cp)) continue;
    checked++;
    if (verdict(`/x/${escaped(cp)}`) !== 'request.bad_path') passed.push(`U+${cp.toString(16).toUpperCase()} -> ${JSON.stringify(folded)}`);
  }
  assert.ok(checked > 100, `${checked} code points fold to such text`);
  assert.deepEqual(passed, []);
});

test('held: symbols best fit maps to other punctuation, and letters of other scripts, pass as sent', async () => {
  // "¡" is "!" in 932 and 950, "¦" "|", "§" a control of 874 (NAK): none changes a path.
  for (const path of ['/x/%C2%A1hola', '/x/a%C2%A6b', '/x/%C2%A7823', '/x/caf%C3%A9', '/x/%E6%97%A5%E6%9C%AC']) {
    assert.equal(verdict(path), 'ok', path);
    const r = await http1Once(setup.pki, setup.gw.port, path, 'Host: localhost\r\n');
    assert.equal(r.status, 200, path);
    assert.equal(JSON.parse(r.body).path, `/via-open${path}`);
  }
});
