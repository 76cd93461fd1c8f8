import { join } from 'node:path';
import { pino } from 'pino';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBoardServer, type BoardServer } from '../../board/server.js';
import { plannedRun, type BigPlan } from '../support/big-plan.js';
import { ARTIFACTS, DOC_SHOTS, openBrowser } from '../support/browser.js';
import { createRunEnv, type RunEnv } from '../support/run-env.js';

/**
 * A reviewer in a real browser (Debian's headless Chromium) reads a
 * 10,000-item plan on the run page, page after page to its end, filters
 * it, and opens one unit's body diff. Screenshots go to test-artifacts/
 * and, for the README and docs/plan-review.md, docs/screenshots/.
 */

const N = 10_000;
const PAGE = 50;

let env: RunEnv;
let board: BoardServer;
let context: BrowserContext;
let closeBrowser: (() => Promise<void>) | undefined;
let plan: BigPlan;
beforeAll(async () => {
  env = await createRunEnv('planbrowser');
  plan = await plannedRun(env.db.pool, { n: N, corpus: 'REVIEW', target: 'review', file: join(env.dir, 'snapshot.ndjson') });
  board = await startBoardServer({ cfg: env.cfg, log: pino({ level: 'silent' }), port: 0, host: '127.0.0.1', credentials: { user: 'admin', password: 'e2e-plan-secret' }, options: { sweepIntervalMs: 60_000 } });
  ({ context, close: closeBrowser } = await openBrowser(board.url, { viewport: { width: 1280, height: 900 } }));
}, 180_000);
afterAll(async () => {
  await closeBrowser?.();
  await board?.close();
  await env?.close();
});

async function keysOnPage(page: Page): Promise<string[]> {
  return page.locator('#plan-page tbody tr td:first-child').allInnerTexts();
}

describe('plan review in headless Chromium', () => {
  it('pages through all 10,000 units of the plan on the run page, in byte order of key, to its end', async () => {
    const page = await context.newPage();
    await page.goto(`${board.url}/runs/${plan.runId}`);
    expect(await page.locator('#plan').innerText()).toContain(plan.planSha256);
    const seen: string[] = [];
    let pages = 0;
    for (;;) {
      const keys = await keysOnPage(page);
      expect(keys.length).toBeGreaterThan(0);
      seen.push(...keys);
      pages += 1;
      if (pages === 2) {
        await page.locator('#plan-items').scrollIntoViewIfNeeded();
        await page.screenshot({ path: join(DOC_SHOTS, 'plan-page.png') });
        await page.screenshot({ path: join(ARTIFACTS, 'plan-page.png'), fullPage: true });
      }
      const next = page.locator('#plan-next');
      if ((await next.count()) === 0) break;
      await Promise.all([page.waitForURL((url) => url.searchParams.get('after') === keys[keys.length - 1]), next.click()]);
    }
    expect(await page.locator('#plan-end').innerText()).toBe('end of plan');
    expect(pages).toBe(N / PAGE);
    expect(seen).toHaveLength(N);
    expect(new Set(seen).size).toBe(N);
    expect(seen).toEqual([...seen].sort());
    expect(seen[0]).toBe('REVIEW/000001');
    expect(seen[N - 1]).toBe('REVIEW/010000');
    await page.locator('#plan-first').click();
    expect((await keysOnPage(page))[0]).toBe('REVIEW/000001');
    await page.close();
  }, 120_000);

  it('filters by op and key prefix with the form', async () => {
    const page = await context.newPage();
    await page.goto(`${board.url}/runs/${plan.runId}`);
    await page.locator('#plan-filter select[name="op"]').selectOption('create');
    await page.locator('#plan-filter input[name="key"]').fill('REVIEW/0095');
    await Promise.all([page.waitForURL((url) => url.searchParams.get('op') === 'create'), page.locator('#plan-filter button').click()]);
    const keys = await keysOnPage(page);
    expect(keys).toHaveLength(PAGE);
    expect(keys.every((k) => k.startsWith('REVIEW/0095'))).toBe(true);
    expect(await page.locator('#plan-page tbody tr td:nth-child(2)').allInnerTexts()).toEqual(Array(PAGE).fill('create'));
    // The next page keeps the filters.
    await Promise.all([page.waitForURL((url) => url.searchParams.get('after') === keys[PAGE - 1]), page.locator('#plan-next').click()]);
    const second = await keysOnPage(page);
    expect(second[0]).toBe('REVIEW/009550');
    expect(second.every((k) => k.startsWith('REVIEW/0095'))).toBe(true);
    await page.close();
  });

  it('opens one unit and sees its body before and after as a diff', async () => {
    const page = await context.newPage();
    await page.goto(`${board.url}/runs/${plan.runId}`);
    await Promise.all([page.waitForURL('**/plan/**'), page.getByRole('link', { name: 'REVIEW/000002' }).click()]);
    expect(await page.locator('h1').innerText()).toBe('Unit REVIEW/000002');
    expect(await page.locator('#unit').innerText()).toMatch(/op\s+revise\+transition/);
    expect(await page.locator('#unit').innerText()).toMatch(/transition\s+draft->enacted/);
    expect(await page.locator('#diff .del').allInnerTexts()).toEqual(['-Its rule, as of version 1.']);
    expect(await page.locator('#diff .add').allInnerTexts()).toEqual(['+Its rule, as of version 2.']);
    expect(await page.locator('#diff').innerText()).toContain("The unit's purpose, unchanged.");
    await page.screenshot({ path: join(DOC_SHOTS, 'plan-unit-diff.png') });
    await page.screenshot({ path: join(ARTIFACTS, 'plan-unit-diff.png'), fullPage: true });
    await page.close();
  });
});
