import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { pollStep } from './poll.js';

/** A free TCP port on loopback, as the kernel hands it out. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface PrivateRedis {
  url: string;
  port: number;
  /** The running server's pid, or undefined (never -1: kill(-1) as root signals every process). */
  pid: () => number | undefined;
  /** SIGKILL, as a crash would. */
  kill: () => Promise<void>;
  /** Start again on the same port and directory (the AOF, if any, is replayed). */
  restart: () => Promise<void>;
  /** SIGTERM and remove the data directory. */
  stop: () => Promise<void>;
}

/**
 * A redis-server of its own on a free port, for tests that kill or restart
 * Redis; stopped by pid, never by touching the shared instance. `args` adds
 * settings (a cluster node's, say).
 */
export async function startPrivateRedis(options: { appendOnly: boolean; args?: readonly string[] }): Promise<PrivateRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'cutter-redis-'));
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;

  const launch = async () => {
    child = spawn(
      'redis-server',
      [
        '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
        '--appendonly', options.appendOnly ? 'yes' : 'no', '--appendfsync', 'always',
        '--maxmemory-policy', 'noeviction', '--daemonize', 'no', ...(options.args ?? []),
      ],
      { stdio: 'ignore' },
    );
    await waitForPing(url, 10_000);
  };
  const exited = (signal: NodeJS.Signals) =>
    new Promise<void>((resolve) => {
      const c = child;
      if (!c || c.exitCode !== null || c.signalCode !== null) return resolve();
      c.once('exit', () => resolve());
      c.kill(signal);
    });

  await launch();
  return {
    url,
    port,
    pid: () => (child && child.exitCode === null && child.signalCode === null ? child.pid : undefined),
    kill: () => exited('SIGKILL'),
    restart: launch,
    stop: async () => {
      await exited('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function waitForPing(url: string, deadlineMs: number): Promise<void> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    redis.on('error', () => undefined); // connect() rejects with the same error
    try {
      await redis.connect();
      if ((await redis.ping()) === 'PONG') return;
    } catch {
      if (Date.now() > until) throw new Error(`redis-server on ${url} did not answer within ${deadlineMs} ms`);
      await pollStep(50);
    } finally {
      redis.disconnect();
    }
  }
}
