// Small helpers for the ops tests: hand-made bundles (no compiler needed), temp dirs, waiting.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serializeBundle } from '../../bundle/write.ts';
import type { BundleApi, BundleContent } from '../../bundle/types.ts';
import { buildIndex } from '../../compiler/emit.ts';
import { apiWithDefaults, emptyBundleContent } from './bundle-builder.ts';

/** An open (keyless) API proxying `listenPath` to `target`. */
export function openApi(id: string, listenPath: string, target: string): BundleApi {
  return apiWithDefaults(id, { listen_path: listenPath, target_url: target, use_keyless: true });
}

/** A valid bundle holding the given APIs (routes on any host). */
export function bundleOf(apis: BundleApi[]): Buffer {
  const content: BundleContent = { ...emptyBundleContent(), index: buildIndex(apis, []) };
  for (const api of apis) content.apis[api.id] = api;
  return serializeBundle(content);
}

/** One case of a `kind: test` document's `cases:` list, as YAML: a request with a client certificate (a path) and what to expect. */
export function accessTestCase(name: string, url: string, certificate: string, expect: string): string {
  return `  - name: ${name}\n    request: { url: ${url}, certificate: ${certificate} }\n    expect: { ${expect} }\n`;
}

export function tempDir(prefix: string): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), `mtlsgate-${prefix}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

type Truthy<T> = Exclude<T, null | undefined | false | 0 | ''>;

/**
 * Polls `check` until it returns a truthy value (resolved with it) or `timeoutMs` passes (then
 * throws, naming `what`). Also callable without the description: waitFor(check, timeoutMs).
 */
export async function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs?: number, everyMs?: number): Promise<Truthy<T>>;
export async function waitFor<T>(check: () => T | Promise<T>, timeoutMs?: number, everyMs?: number): Promise<Truthy<T>>;
export async function waitFor<T>(...args: unknown[]): Promise<Truthy<T>> {
  const described = typeof args[0] === 'string';
  const what = described ? (args[0] as string) : 'a condition';
  const [check, timeoutMs = 10_000, everyMs = 20] = (described ? args.slice(1) : args) as [() => T | Promise<T>, number?, number?];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as Truthy<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * What `promise` settles to, or `late` if it has not within `ms`. The timer is cleared once
 * `promise` settles: a pending one would keep the test file's process alive for the rest of `ms`.
 */
export async function settledWithin<T, L>(promise: Promise<T>, ms: number, late: L): Promise<T | L> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<L>((resolve) => (timer = setTimeout(() => resolve(late), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
