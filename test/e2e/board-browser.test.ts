import { join } from 'node:path';
import { pino } from 'pino';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBoardServer, type BoardServer } from '../../board/server.js';
import { PHASES } from '../../shared/jobs/catalog.js';
import { ARTIFACTS, DOC_SHOTS as README_SHOTS, openBrowser } from '../support/browser.js';
import { createRunEnv, type RunEnv } from '../support/run-env.js';

/**
 * What an admin sees in a real browser (Debian's headless Chromium): Bull
 * Board behind basic auth with every phase queue and a finished dry run's
 * jobs, no control that changes a job, and the run pages. Screenshots go to
 * test-artifacts/ and, for the README, docs/screenshots/.
 */

const credentials = { user: 'admin', password: 'e2e-board-secret' };
/** Button labels of Bull Board's job and queue actions: none may be usable on a read-only board. */
const MUTATING = /promote|retry|add|clean|pause|resume|empty|obliterate|delete|remove|duplicate|update|edit|rerun/i;

let env: RunEnv;
let board: BoardServer;
let browser: Browser;
let context: BrowserContext;
let closeBrowser: (() => Promise<void>) | undefined;
let runId: string;
beforeAll(async () => {
  env = await createRunEnv('boarde2e');
  await env.startFleet();
  board = await startBoardServer({ cfg: env.cfg, log: pino({ level: 'silent' }), port: 0, host: '127.0.0.1', credentials, options: { sweepIntervalMs: 60_000 } });
  runId = await env.enqueue('dry');
  const ended = await env.waitForEnd(runId, 90_000);
  expect(ended.status, JSON.stringify(ended.error)).toBe('succeeded');
  ({ browser, context, close: closeBrowser } = await openBrowser(board.url, { httpCredentials: { username: credentials.user, password: credentials.password }, viewport: { width: 1280, height: 860 } }));
}, 180_000);
afterAll(async () => {
  await closeBrowser?.();
  await board?.close();
  await env?.close();
});

async function shot(page: Page, name: string, readme?: string): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
  if (readme) await page.screenshot({ path: join(README_SHOTS, readme), fullPage: false });
}

/** Visible, enabled buttons whose label names a job action (and how many buttons were looked at, so an empty answer means something). */
async function mutatingControls(page: Page): Promise<string[]> {
  const found: string[] = [];
  let examined = 0;
  for (const el of await page.locator('button, [role="button"], [role="menuitem"], input[type="submit"]').all()) {
    if (!(await el.isVisible()) || (await el.isDisabled())) continue;
    examined += 1;
    const label = `${(await el.innerText()).trim()} ${(await el.getAttribute('aria-label')) ?? ''} ${(await el.getAttribute('title')) ?? ''}`;
    if (MUTATING.test(label)) found.push(label.trim());
  }
  // The page must have rendered its controls (tabs, menus) for "none of them mutates" to mean anything.
  expect(examined, 'visible buttons on the page').toBeGreaterThan(3);
  return found;
}

describe('the board in headless Chromium', () => {
  it('without credentials, Bull Board is not shown', async () => {
    const anonymous = await browser.newContext();
    try {
      const page = await anonymous.newPage();
      // Chromium answers a Basic challenge it cannot meet by failing the navigation, or shows the 401 body.
      const outcome = await page.goto(`${board.url}/admin/queues`).then(
        (res) => `status ${String(res?.status())}`,
        (err: unknown) => (err instanceof Error ? err.message : String(err)),
      );
      expect(outcome).toMatch(/status 401|ERR_INVALID_AUTH_CREDENTIALS/);
      expect(await page.getByText('approval-gate', { exact: true }).count()).toBe(0);
    } finally {
      await anonymous.close();
    }
  });

  it('logs in to Bull Board, sees all eight phase queues and the dry run’s jobs, and finds no control that changes a job', async () => {
    const page = await context.newPage();
    const res = await page.goto(`${board.url}/admin/queues`, { waitUntil: 'domcontentloaded' });
    expect(res?.status()).toBe(200);
    for (const phase of PHASES) await page.getByText(phase, { exact: true }).first().waitFor({ state: 'visible', timeout: 15_000 });
    expect(await mutatingControls(page)).toEqual([]);
    await shot(page, 'bull-board-overview', 'board.png');
    // Menus hide their items until opened: open each one and look inside too.
    for (const menu of await page.locator('button[aria-haspopup]').all()) {
      if (!(await menu.isVisible())) continue;
      await menu.click();
      const items = await page.locator('[role="menuitem"]').allInnerTexts();
      expect(items.filter((t) => MUTATING.test(t)), `menu items: ${items.join(' | ')}`).toEqual([]);
      await page.keyboard.press('Escape');
    }

    await page.goto(`${board.url}/admin/queues/queue/verify?status=completed`, { waitUntil: 'domcontentloaded' });
    await page.getByText(`${runId}.verify`).first().waitFor({ state: 'visible', timeout: 15_000 });
    expect(await mutatingControls(page)).toEqual([]);
    await shot(page, 'bull-board-verify-completed');

    await page.goto(`${board.url}/admin/queues/queue/execute?status=completed`, { waitUntil: 'domcontentloaded' });
    await page.getByText(`${runId}.execute`).first().waitFor({ state: 'visible', timeout: 15_000 });
    expect(await mutatingControls(page)).toEqual([]);
    await page.close();
  });

  it('opens /runs and the run page, and sees each phase and the verdict', async () => {
    const page = await context.newPage();
    await page.goto(`${board.url}/runs`);
    const row = page.locator('#runs tr', { hasText: runId });
    expect(await row.innerText()).toMatch(/icx-work\s+dry\s+succeeded\s+PASS/);
    await shot(page, 'runs');
    await row.getByRole('link', { name: runId }).click();
    await page.waitForURL(`**/runs/${runId}`);
    for (const phase of PHASES.filter((p) => p !== 'approval-gate')) {
      expect(await page.locator(`#phases tr[data-phase="${phase}"]`).innerText()).toMatch(new RegExp(`${phase}\\s+completed`));
    }
    expect((await page.locator('#verdict').innerText()).trim()).toBe('PASS');
    expect(await page.locator('#verification').innerText()).toMatch(/PASS/);
    expect(await page.locator('#report h1').innerText()).toBe(`Run ${runId}`);
    await shot(page, 'run-page', 'run-page.png');
    await page.close();
  });
});
