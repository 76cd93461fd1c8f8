import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startBoardServer, type BoardServer } from '../../board/server.js';
import { parseConfig } from '../../shared/config.js';
import { REDACT_PATHS } from '../../shared/logger.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { waitFor } from '../support/poll.js';
import { testQueuePrefix } from '../support/prefix.js';

/**
 * The board's request log as an operator would read it: one line per
 * request with method, path and status, and never a credential or an
 * approval signature, whatever the client sent.
 */

const credentials = { user: 'admin', password: 'never-in-a-log-7f3a' };
const lines: string[] = [];
let db: TestDatabase;
let board: BoardServer;
beforeAll(async () => {
  db = await createTestDatabase('boardlogs');
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  const log = pino({ level: 'info', redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, sink);
  const cfg = parseConfig({ DATABASE_URL: db.url, REDIS_URL: inject('redisUrl'), CUTTER_QUEUE_PREFIX: testQueuePrefix('logs'), LOG_LEVEL: 'info' });
  board = await startBoardServer({ cfg, log, port: 0, host: '127.0.0.1', credentials, options: { sweepIntervalMs: 60_000 } });
});
afterAll(async () => {
  await board?.close();
  await db?.drop();
});

describe('request logs', () => {
  it('record method, path and status, and no credentials or signatures', async () => {
    const auth = `Basic ${Buffer.from(`${credentials.user}:${credentials.password}`).toString('base64')}`;
    expect((await fetch(`${board.url}/admin/queues`, { headers: { authorization: auth, cookie: 'session=cookie-secret' } })).status).toBe(200);
    const signature = Buffer.from('a-signature-that-must-not-be-logged').toString('base64');
    const posted = await fetch(`${board.url}/runs/run-20000101-000000-000000/approvals?sig=${signature}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ document: 'cutter-approval: v1\n', signature, key_id: '0123456789abcdef' }),
    });
    expect(posted.status).toBeGreaterThanOrEqual(400);
    const requests = await waitFor('both request lines', () => {
      const found = lines.map((l) => JSON.parse(l) as { req?: { method: string; path: string }; res?: { status: number } }).filter((l) => l.req);
      return found.length >= 2 ? found : undefined;
    });
    expect(requests.map((r) => `${r.req?.method} ${r.req?.path} ${r.res?.status}`)).toEqual([
      'GET /admin/queues 200',
      `POST /runs/run-20000101-000000-000000/approvals ${posted.status}`,
    ]);
    const all = lines.join('\n');
    for (const secret of [credentials.password, auth.slice(6), 'cookie-secret', signature]) expect(all).not.toContain(secret);
  });
});
