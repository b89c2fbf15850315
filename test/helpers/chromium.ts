// Debian's chromium through playwright-core, as the browser tests drive it: headless, without
// the sandbox (the tests run as root on CI machines) and without background traffic (QUIC,
// component updates, sync), so the only requests are the test's own.
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';

/** Where the browser tests leave their screenshots. */
export const ARTIFACTS = join(import.meta.dirname, '..', '..', 'test-artifacts');

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    timeout: 60_000,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/**
 * Closes the browser a `launchChromium()` gave or will give. A before() starts the launch first
 * and awaits it last (the launch takes seconds on a loaded machine); if a step between fails,
 * its after() still leaves no Chromium behind.
 */
export async function closeLaunched(launching: Promise<Browser> | undefined): Promise<void> {
  await launching?.then(
    (browser) => browser.close(),
    () => {},
  );
}

/**
 * Runs `start` with Chromium launching beside it (the launch takes seconds on a loaded machine,
 * so it overlaps the set-up); if `start` fails, the browser is closed, not left behind.
 */
export async function withChromiumLaunching<T>(start: (launching: Promise<Browser>) => Promise<T>): Promise<T> {
  const launching = launchChromium();
  try {
    return await start(launching);
  } catch (err) {
    await closeLaunched(launching);
    throw err;
  }
}
