import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBoardServer, type BoardServer } from '../../board/server.js';
import { parseConfig } from '../../shared/config.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { waitFor } from '../support/poll.js';
import { freePort, startPrivateRedis, type PrivateRedis } from '../support/redis-server.js';

/**
 * /healthz against services that fail: a private redis-server this test
 * kills (never the shared one), and a PostgreSQL address where nothing
 * listens. Each outage must turn into a 503 within a second.
 */

const silent = pino({ level: 'silent' });
const credentials = { user: 'admin', password: 'health-secret' };

let db: TestDatabase;
let redis: PrivateRedis;
let board: BoardServer;
beforeAll(async () => {
  db = await createTestDatabase('boardhealth');
  redis = await startPrivateRedis({ appendOnly: false });
  const cfg = parseConfig({ DATABASE_URL: db.url, REDIS_URL: redis.url, LOG_LEVEL: 'silent' });
  board = await startBoardServer({ cfg, log: silent, port: 0, host: '127.0.0.1', credentials, options: { sweepIntervalMs: 60_000 } });
});
afterAll(async () => {
  await board?.close();
  await redis?.stop();
  await db?.drop();
});

async function health(url: string): Promise<{ status: number; ms: number; body: { status: string; redis: { ok: boolean }; postgres: { ok: boolean } } }> {
  const started = performance.now();
  const res = await fetch(`${url}/healthz`);
  const body = (await res.json()) as { status: string; redis: { ok: boolean }; postgres: { ok: boolean } };
  return { status: res.status, ms: performance.now() - started, body };
}

describe('/healthz', () => {
  it('answers 200 while Redis and Postgres answer, 503 within 1 s once Redis is stopped, 200 again after it is back', async () => {
    const up = await health(board.url);
    expect(up.status).toBe(200);
    expect(up.body).toEqual({ status: 'ok', redis: { ok: true }, postgres: { ok: true } });

    await redis.kill();
    const down = await health(board.url);
    expect(down.status).toBe(503);
    expect(down.ms).toBeLessThan(1000);
    expect(down.body).toMatchObject({ status: 'unavailable', redis: { ok: false }, postgres: { ok: true } });

    await redis.restart();
    await waitFor('the board to see Redis again', async () => ((await health(board.url)).status === 200 ? true : undefined), { deadlineMs: 20_000, stepMs: 100 });
  });

  it('answers 503 within 1 s when Postgres does not answer', async () => {
    const port = await freePort();
    const cfg = parseConfig({ DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/nowhere`, REDIS_URL: redis.url, LOG_LEVEL: 'silent' });
    const noDb = await startBoardServer({ cfg, log: silent, port: 0, host: '127.0.0.1', credentials, options: { sweepIntervalMs: 60_000 } });
    try {
      const down = await health(noDb.url);
      expect(down.status).toBe(503);
      expect(down.ms).toBeLessThan(1000);
      expect(down.body).toMatchObject({ status: 'unavailable', redis: { ok: true }, postgres: { ok: false } });
    } finally {
      await noDb.close();
    }
  });
});
