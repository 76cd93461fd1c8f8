import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_PATH } from '../support/cli.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { freePort } from '../support/redis-server.js';

/**
 * `cutter worker` while Redis does not answer: it waits for Redis and says
 * so once per interval, not once per reconnect attempt of every queue and
 * worker (574 warnings in 90 s before).
 */

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase('workeroutage');
});
afterAll(async () => {
  await db?.drop();
});

describe('cutter worker with Redis down', () => {
  it('logs the outage once per interval and keeps waiting', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, [CLI_PATH, 'worker'], {
      env: { PATH: process.env['PATH'] ?? '', DATABASE_URL: db.url, REDIS_URL: `redis://127.0.0.1:${port}`, CUTTER_QUEUE_PREFIX: 'workeroutage', LOG_FORMAT: 'json' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    await new Promise((resolve) => setTimeout(resolve, 6_000));
    expect(child.exitCode, 'still waiting for Redis').toBeNull();
    child.kill('SIGTERM');
    await exited;
    const lines = stderr.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { msg: string; service?: string; err?: { message: string } });
    const outage = lines.filter((l) => l.err?.message.includes(`ECONNREFUSED 127.0.0.1:${port}`));
    expect(outage.length, stderr.slice(0, 2000)).toBe(1);
    expect(outage[0]).toMatchObject({ service: 'redis' });
  }, 30_000);
});
