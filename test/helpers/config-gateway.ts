// A gateway over a config directory, as the PKI tests run one: the directory compiled (no
// errors allowed) and served by a test gateway; and the teardown each of them repeats.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { loadBundle } from '../../bundle/read.ts';
import { closeAllUpstreams } from '../../runtime/upstreams.ts';
import { compileDir } from './compile-and-load.ts';
import { type EchoUpstream, startTestGateway, type TestGateway, type TestPki } from './gateway-fixtures.ts';

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
