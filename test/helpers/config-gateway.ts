// What the gateway tests start in `before` and close in `after`: a demo PKI and an echo
// upstream, a test gateway over a bundle built from them or over a config directory compiled
// (no errors allowed), and the teardown each of them repeats.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before } from 'node:test';
import { loadBundle } from '../../bundle/read.ts';
import type { Bundle } from '../../bundle/types.ts';
import type { GatewayOptions } from '../../runtime/gateway.ts';
import { closeAllUpstreams } from '../../runtime/upstreams.ts';
import { type ApiSpec, buildBundle } from './bundle-builder.ts';
import { compileDir } from './compile-and-load.ts';
import { type EchoUpstream, makePki, startEcho, startTestGateway, type TestGateway, type TestPki } from './gateway-fixtures.ts';

/** A demo PKI (removed by `cleanup`) and an echo upstream. */
export interface PkiAndEcho {
  pki: TestPki;
  cleanup: () => void;
  echo: EchoUpstream;
}

/** Makes the demo PKI and starts an echo upstream. */
export async function startPkiAndEcho(): Promise<PkiAndEcho> {
  const { pki, cleanup } = await makePki();
  try {
    return { pki, cleanup, echo: await startEcho() };
  } catch (err) {
    cleanup();
    throw err;
  }
}

/**
 * The PKI and echo upstream, and a test gateway serving the bundle `bundleOf` builds from them
 * (it may also issue certificates or set `echo.slowMs` first). What started is closed again
 * when a later step throws: a `before` that fails half-way leaves no server running.
 */
export async function startGatewayTest(
  bundleOf: (parts: PkiAndEcho) => Bundle | Promise<Bundle>,
  extra: Partial<GatewayOptions> = {},
): Promise<PkiAndEcho & { gw: TestGateway }> {
  const parts = await startPkiAndEcho();
  try {
    return { ...parts, gw: await startTestGateway(parts.pki, await bundleOf(parts), extra) };
  } catch (err) {
    await closeGatewayTest(parts);
    throw err;
  }
}

/**
 * startGatewayTest for a whole test file: registers the `before` that starts it and the `after`
 * that closes it. The fields of what it returns are there once that `before` has run: read
 * them in tests, not in another top-level `before` (Node 20 starts a file's top-level `before`
 * hooks without waiting for the one before to finish).
 */
export function gatewayTestHooks(
  bundleOf: (parts: PkiAndEcho) => Bundle | Promise<Bundle>,
  extra: Partial<GatewayOptions> = {},
): PkiAndEcho & { gw: TestGateway } {
  const started = {} as PkiAndEcho & { gw: TestGateway };
  before(async () => {
    Object.assign(started, await startGatewayTest(bundleOf, extra));
  });
  after(() => closeGatewayTest(started));
  return started;
}

/**
 * The keyless "/" API and the "/admin/" API it must never reach, as the path tests use them:
 * strip_listen_path off, so the upstream receives the target's base and the whole path, and the
 * base (/via-open, /via-admin) says which API chose.
 */
export function openAndAdminApis(echo: EchoUpstream): ApiSpec[] {
  return [
    { id: 'open', listen_path: '/', target_url: `${echo.url}/via-open`, use_keyless: true, strip_listen_path: false },
    { id: 'admin', listen_path: '/admin/', target_url: `${echo.url}/via-admin`, use_keyless: true, strip_listen_path: false },
  ];
}

/** Compiles `dir` (asserting no errors) and starts a test gateway serving its bundle. */
export async function gatewayOnConfig(pki: TestPki, dir: string): Promise<TestGateway> {
  const r = await compileDir(dir);
  assert.equal(r.errorCount, 0, JSON.stringify(r.diagnostics, null, 1));
  return startTestGateway(pki, loadBundle(r.bundle!));
}

/** Closes what such a test started (any part may be missing: `before` may have failed half-way). */
export async function closeGatewayTest(parts: { gw?: TestGateway; echo?: EchoUpstream; cleanup?: () => void; dirs?: (string | undefined)[] }): Promise<void> {
  await parts.gw?.close();
  await parts.echo?.close();
  await closeAllUpstreams();
  parts.cleanup?.();
  for (const dir of parts.dirs ?? []) if (dir) rmSync(dir, { recursive: true, force: true });
}

/** The simplest bundle: one keyless API at "/" forwarding to the echo upstream. */
export function keylessOpenBundle(echo: EchoUpstream): Bundle {
  return buildBundle([{ id: 'open', listen_path: '/', target_url: echo.url, use_keyless: true }]);
}
