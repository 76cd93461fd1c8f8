import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBoardServer, type BoardServer } from '../../board/server.js';
import { PHASES } from '../../shared/jobs/catalog.js';
import { createRunEnv, type RunEnv } from '../support/run-env.js';

/**
 * Bull Board opened as another machine opens it: through a host name that is
 * not localhost (Chromium maps board.test to 127.0.0.1), over plain HTTP.
 * Browsers treat only localhost as secure, so https-only headers sent here
 * would make them fetch the page's scripts over https, and the board would
 * stay on "Loading". No request may leave for another host.
 */

const ARTIFACTS = new URL('../../test-artifacts/e2e/', import.meta.url).pathname;
const README_SHOTS = new URL('../../docs/screenshots/', import.meta.url).pathname;
const credentials = { user: 'admin', password: 'e2e-remote-secret' };

let env: RunEnv;
let board: BoardServer;
let browser: Browser;
let runId: string;
beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  env = await createRunEnv('boardremote');
  await env.startFleet();
  board = await startBoardServer({ cfg: env.cfg, log: pino({ level: 'silent' }), port: 0, credentials, options: { sweepIntervalMs: 60_000 } });
  runId = await env.enqueue('dry');
  expect((await env.waitForEnd(runId, 90_000)).status).toBe('succeeded');
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--host-resolver-rules=MAP board.test 127.0.0.1'],
  });
}, 180_000);
afterAll(async () => {
  await browser?.close();
  await board?.close();
  await env?.close();
});

describe('Bull Board from another machine', () => {
  it('binds to BOARD_HOST, 127.0.0.1 by default, and says so', () => {
    expect(board.address).toBe('127.0.0.1');
    expect(board.url).toBe(`http://127.0.0.1:${board.port}`);
  });

  it('over plain HTTP through http://board.test: the queue list and a job render, and no request leaves for another host', async () => {
    const origin = `http://board.test:${board.port}`;
    const context = await browser.newContext({ httpCredentials: { username: credentials.user, password: credentials.password }, viewport: { width: 1280, height: 860 } });
    const elsewhere: string[] = [];
    context.on('request', (req) => {
      if (new URL(req.url()).origin !== origin) elsewhere.push(req.url());
    });
    try {
      const page = await context.newPage();
      const res = await page.goto(`${origin}/admin/queues`, { waitUntil: 'domcontentloaded' });
      expect(res?.status()).toBe(200);
      expect(res?.headers()['strict-transport-security']).toBeUndefined();
      expect(res?.headers()['content-security-policy']).not.toContain('upgrade-insecure-requests');
      await page.getByText('approval-gate', { exact: true }).first().waitFor({ state: 'visible', timeout: 15_000 });
      // The queues in phase order, not alphabetical.
      const listed = (await page.getByText(new RegExp(`^(${PHASES.join('|')})$`)).allInnerTexts()).map((t) => t.trim());
      expect(listed.filter((name, i) => listed.indexOf(name) === i)).toEqual([...PHASES]);
      await page.screenshot({ path: join(ARTIFACTS, 'board-remote-queues.png'), fullPage: true });
      await page.screenshot({ path: join(README_SHOTS, 'board-remote.png') });

      // The gate's queue says what its delayed jobs wait for, so "will run at" does not read as a scheduled execution.
      await page.goto(`${origin}/admin/queues/queue/approval-gate`, { waitUntil: 'domcontentloaded' });
      await page.getByText(/without approval the run then EXPIRES, nothing is executed/).first().waitFor({ state: 'visible', timeout: 15_000 });

      await page.goto(`${origin}/admin/queues/queue/verify?status=completed`, { waitUntil: 'domcontentloaded' });
      const job = page.getByText(`${runId}.verify`).first();
      await job.waitFor({ state: 'visible', timeout: 15_000 });
      await job.click();
      await page.getByText(/verdict/).first().waitFor({ state: 'visible', timeout: 15_000 });
      await page.screenshot({ path: join(ARTIFACTS, 'board-remote-job.png'), fullPage: true });
      await page.screenshot({ path: join(README_SHOTS, 'board-remote-job.png') });
      expect(elsewhere).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('sends the https-only headers when the board is reached over TLS (CUTTER_BOARD_URL https://…)', async () => {
    const tlsBoard = await startBoardServer({
      cfg: { ...env.cfg, CUTTER_BOARD_URL: 'https://cutter.example' },
      log: pino({ level: 'silent' }),
      port: 0,
      credentials,
      options: { sweepIntervalMs: 60_000 },
    });
    try {
      const res = await fetch(`${tlsBoard.url}/healthz`);
      expect(res.headers.get('strict-transport-security')).toMatch(/max-age=\d+/);
      expect(res.headers.get('content-security-policy')).toContain('upgrade-insecure-requests');
    } finally {
      await tlsBoard.close();
    }
  });
});
