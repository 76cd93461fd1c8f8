import { spawn } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_PATH } from '../support/cli.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { waitFor } from '../support/poll.js';

/**
 * `cutter worker` while Redis does not answer: it waits for Redis and says
 * so once per interval and kind of failure, not once per reconnect attempt
 * of every queue and worker (574 warnings in 90 s before).
 */

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase('workeroutage');
});
afterAll(async () => {
  await db?.drop();
});

describe('cutter worker with Redis down', () => {
  it('logs the outage once per interval and message, however often it retries, and keeps waiting', async () => {
    // A "Redis" that resets every connection: each reconnect attempt of every queue and worker is counted here.
    let attempts = 0;
    const resetter = createServer((socket) => {
      attempts += 1;
      socket.resetAndDestroy();
    });
    await new Promise<void>((resolve) => resetter.listen(0, '127.0.0.1', () => resolve()));
    const { port } = resetter.address() as AddressInfo;
    const child = spawn(process.execPath, [CLI_PATH, 'worker'], {
      env: { PATH: process.env['PATH'] ?? '', DATABASE_URL: db.url, REDIS_URL: `redis://127.0.0.1:${port}`, CUTTER_QUEUE_PREFIX: 'workeroutage', LOG_FORMAT: 'json' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await waitFor('50 reconnect attempts', () => (attempts >= 50 ? true : undefined), { deadlineMs: 30_000 });
      expect(child.exitCode, 'still waiting for Redis').toBeNull();
    } finally {
      child.kill('SIGTERM');
      await exited;
      await new Promise<void>((resolve) => resetter.close(() => resolve()));
    }
    const lines = stderr.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { service?: string; err?: { message: string } });
    const outage = lines.filter((l) => l.service === 'redis').map((l) => l.err?.message ?? '?');
    expect(outage.length, stderr.slice(0, 2000)).toBeGreaterThan(0);
    // Within the 30 s interval each kind of failure is told once, though it recurred dozens of times.
    expect(outage, `${attempts} attempts`).toEqual([...new Set(outage)]);
    expect(outage.length).toBeLessThan(attempts / 10);
  }, 60_000);
});
