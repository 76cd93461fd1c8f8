import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { pollStep } from './poll.js';
import { freePort } from './redis-server.js';

const BIN = process.env['PG_BIN'] ?? '/usr/lib/postgresql/15/bin';

export interface PrivatePostgres {
  /** The server URL (database `postgres`); swap the path for another database. */
  url: string;
  port: number;
  /** The postmaster's pid while it runs; undefined otherwise (never -1: kill(-1) signals every process). */
  pid: () => number | undefined;
  /** SIGQUIT to the postmaster: every backend dies at once and the next start runs crash recovery. */
  stopImmediate: () => Promise<void>;
  /** SIGINT to the postmaster: open transactions are rolled back and clients disconnected. */
  stopFast: () => Promise<void>;
  /** Starts again on the same port and data directory; resolves once it accepts connections. */
  start: () => Promise<void>;
  /** Stops the server (fast) and removes its directory. */
  cleanup: () => Promise<void>;
}

interface PostgresUser {
  uid: number;
  gid: number;
}

function postgresUser(): PostgresUser {
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

/**
 * A PostgreSQL cluster of its own on a free port, for tests that kill or
 * restart the server; the shared instance on 5432 is never touched. The
 * cluster is initdb'd into a temp dir owned by `postgres` (the server refuses
 * to run as root), listens on 127.0.0.1 only, trusts every local login, and is
 * signalled by the postmaster's pid.
 */
export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const user = postgresUser();
  const dir = mkdtempSync(join(tmpdir(), 'cutter-pg-'));
  chownSync(dir, user.uid, user.gid);
  const data = join(dir, 'data');
  // --no-sync: the cluster lives only as long as the test file, and crash
  // recovery after an immediate stop needs no fsync (the OS keeps the pages).
  execFileSync(join(BIN, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C'], {
    uid: user.uid,
    gid: user.gid,
    cwd: dir,
    stdio: 'ignore',
  });
  const port = await freePort();
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  let child: ChildProcess | undefined;
  let log = '';

  const start = async () => {
    log = '';
    const server = spawn(
      join(BIN, 'postgres'),
      [
        '-D', data, '-p', String(port), '-k', dir,
        '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'max_connections=60',
        '-c', 'shared_buffers=32MB', '-c', 'logging_collector=off',
      ],
      { uid: user.uid, gid: user.gid, cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    server.stderr?.setEncoding('utf8').on('data', (d: string) => {
      log = (log + d).slice(-8000);
    });
    child = server;
    await waitForConnections(url, server, () => log, 30_000);
  };
  const stop = (signal: NodeJS.Signals) =>
    new Promise<void>((resolve) => {
      const c = child;
      if (!c || c.exitCode !== null || c.signalCode !== null) return resolve();
      c.once('exit', () => resolve());
      c.kill(signal);
    });

  // A test process that dies without its afterAll must not leave the server running.
  const stopOnExit = () => child?.kill('SIGQUIT');
  process.once('exit', stopOnExit);
  await start();
  return {
    url,
    port,
    pid: () => (child && child.exitCode === null && child.signalCode === null ? child.pid : undefined),
    stopImmediate: () => stop('SIGQUIT'),
    stopFast: () => stop('SIGINT'),
    start,
    cleanup: async () => {
      process.removeListener('exit', stopOnExit);
      await stop('SIGINT');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function waitForConnections(url: string, server: ChildProcess, log: () => string, deadlineMs: number): Promise<void> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    if (server.exitCode !== null || server.signalCode !== null) {
      throw new Error(`private postgres exited during start (${String(server.exitCode ?? server.signalCode)}): ${log()}`);
    }
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
    client.on('error', () => undefined); // connect() rejects with the same error
    try {
      await client.connect();
      await client.query('SELECT 1');
      return;
    } catch {
      // "the database system is starting up" (57P03) or refused while it recovers
      if (Date.now() > until) throw new Error(`private postgres on ${url} did not accept connections within ${deadlineMs} ms: ${log()}`);
      await pollStep(50);
    } finally {
      await client.end().catch(() => undefined);
    }
  }
}
