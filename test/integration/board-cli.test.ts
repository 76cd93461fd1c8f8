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
  it('refuses to start without BOARD_USER / BOARD_PASSWORD, naming them, on any address', async () => {
    for (const host of ['127.0.0.1', '0.0.0.0']) {
      const r = await runCli(['board', '--port', '0'], { ...env, BOARD_HOST: host });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/BOARD_USER and BOARD_PASSWORD/);
      expect(r.stdout).not.toMatch(/listening/);
    }
  });

  it('listens on BOARD_HOST and says where; pretty logs honour NO_COLOR', async () => {
    const started = async (vars: Record<string, string>): Promise<{ stdout: string; stderr: string }> => {
      const child = spawn(process.execPath, [CLI_PATH, 'board', '--port', '0'], {
        env: { PATH: process.env['PATH'] ?? '', ...env, BOARD_USER: 'admin', BOARD_PASSWORD: 'test-only-password', LOG_LEVEL: 'info', LOG_FORMAT: 'pretty', ...vars },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      // Up once it says so on stdout and its log line (written by pino's transport thread) has reached stderr.
      await new Promise<void>((resolve, reject) => {
        const check = () => {
          if (/Bull Board: /.test(stdout) && stderr.includes('board listening')) resolve();
        };
        child.stdout.setEncoding('utf8').on('data', (d: string) => {
          stdout += d;
          check();
        });
        child.stderr.on('data', check);
        child.once('exit', (code) => reject(new Error(`cutter board exited early (${String(code)}): ${stderr}`)));
      });
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      await exited;
      return { stdout, stderr };
    };
    const everywhere = await started({ BOARD_HOST: '0.0.0.0', NO_COLOR: '1' });
    expect(everywhere.stdout).toMatch(/^board listening on http:\/\/127\.0\.0\.1:\d+ \(bound to 0\.0\.0\.0: every address of this machine\)$/m);
    expect(everywhere.stderr).toContain('board listening');
    expect(everywhere.stderr).not.toContain('\u001b[');
    const coloured = await started({});
    expect(coloured.stdout).toMatch(/^board listening on http:\/\/127\.0\.0\.1:\d+$/m);
    expect(coloured.stderr).toContain('\u001b[');
  }, 60_000);

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
