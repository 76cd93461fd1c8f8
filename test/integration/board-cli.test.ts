import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CLI_PATH, runCli } from '../support/cli.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

/**
 * `cutter board` as an operator starts it: it refuses to listen on a public
 * address without BOARD_USER / BOARD_PASSWORD, and `--demo` prints
 * generated credentials that open Bull Board.
 */

let db: TestDatabase;
let env: Record<string, string>;
beforeAll(async () => {
  db = await createTestDatabase('boardcli');
  env = { DATABASE_URL: db.url, REDIS_URL: inject('redisUrl'), CUTTER_QUEUE_PREFIX: 'boardcli', LOG_LEVEL: 'silent' };
});
afterAll(async () => {
  await db?.drop();
});

describe('cutter board', () => {
  it('refuses to start on 0.0.0.0 without BOARD_USER / BOARD_PASSWORD, naming them', async () => {
    const r = await runCli(['board', '--port', '0'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/BOARD_USER and BOARD_PASSWORD/);
    expect(r.stdout).not.toMatch(/listening/);
  });

  it('--demo binds to loopback only and prints credentials that open Bull Board', async () => {
    const refused = await runCli(['board', '--demo', '--host', '0.0.0.0', '--port', '0'], env);
    expect(refused.code).toBe(2);

    const child = spawn(process.execPath, [CLI_PATH, 'board', '--demo', '--port', '0'], { env: { PATH: process.env['PATH'] ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const { url, user, password } = await new Promise<{ url: string; user: string; password: string }>((resolve, reject) => {
        let out = '';
        child.stdout.setEncoding('utf8').on('data', (d: string) => {
          out += d;
          const listening = /board listening on (\S+)/.exec(out);
          const creds = /demo credentials \(this process only\): user (\S+) password (\S+)/.exec(out);
          if (listening?.[1] && creds?.[1] && creds[2]) resolve({ url: listening[1], user: creds[1], password: creds[2] });
        });
        child.once('exit', (code) => reject(new Error(`cutter board --demo exited early (${String(code)})`)));
      });
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect((await fetch(`${url}/admin/queues`)).status).toBe(401);
      const auth = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
      expect((await fetch(`${url}/admin/queues`, { headers: { authorization: auth } })).status).toBe(200);
    } finally {
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    }
  });
});
