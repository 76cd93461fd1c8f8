import { mkdirSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';

/** Debian's headless Chromium, as the e2e tests drive it. */
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Where e2e screenshots go: every one to test-artifacts/, the ones the docs show to docs/screenshots/. */
export const ARTIFACTS = new URL('../../test-artifacts/e2e/', import.meta.url).pathname;
export const DOC_SHOTS = new URL('../../docs/screenshots/', import.meta.url).pathname;

/**
 * Launches Chromium with a context that reaches only `origin`: the sandbox
 * has no internet (Bull Board links a web font), so anything else is
 * refused at once rather than waited on. Creates the screenshot folders;
 * close() ends the context and the browser.
 */
export async function openBrowser(
  origin: string,
  options: { httpCredentials?: { username: string; password: string }; viewport: { width: number; height: number } },
): Promise<{ browser: Browser; context: BrowserContext; close: () => Promise<void> }> {
  mkdirSync(ARTIFACTS, { recursive: true });
  mkdirSync(DOC_SHOTS, { recursive: true });
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  const context = await browser.newContext(options);
  await context.route(
    (url) => url.origin !== new URL(origin).origin,
    (route) => route.abort(),
  );
  return {
    browser,
    context,
    close: async () => {
      await context.close();
      await browser.close();
    },
  };
}
