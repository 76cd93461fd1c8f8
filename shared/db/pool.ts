import pg from 'pg';

/**
 * Connection pools. BIGINT (int8) comes back as a JS number when it fits, since
 * every id and count here stays far below 2^53; the parser refuses rather
 * than rounding when it does not.
 */
pg.types.setTypeParser(20, (value: string) => {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new RangeError(`int8 ${value} exceeds the safe integer range`);
  return n;
});

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;
export type { QueryResultRow } from 'pg';

/** Told about a connection the server dropped (restart, pg_terminate_backend); informative only. */
export type ConnectionErrorListener = (err: Error) => void;

/**
 * A pool for one database URL; the application name shows in pg_stat_activity.
 *
 * node-postgres emits 'error' when the server drops a connection: on the pool
 * for an idle client, and on the client itself for one that is checked out
 * but has no query in flight (a transaction open between statements), and
 * even for one whose in-flight query already failed with the drop. An 'error'
 * event nobody listens to kills the Node process, so a Postgres restart or a
 * terminated backend took every worker down with it. Every pool made here
 * listens to both: the pool has already discarded a dropped idle client, and
 * a dropped checked-out client fails its current and every later query,
 * which is where its caller learns of it and fails or retries its job.
 */
export function createPool(
  url: string,
  options: { max?: number; applicationName?: string; onConnectionError?: ConnectionErrorListener } = {},
): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 10,
    application_name: options.applicationName ?? 'cutter',
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 10_000,
  });
  const report = options.onConnectionError ?? (() => undefined);
  // The client-level listener below reports idle and checked-out clients alike; this one only keeps the process alive.
  pool.on('error', () => undefined);
  pool.on('connect', (client) => {
    client.on('error', report);
  });
  return pool;
}

// Socket errors of a server that is down or restarting (not ENOTFOUND: a wrong host is no outage).
const UNREACHABLE_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH']);
// admin_shutdown (also pg_terminate_backend), crash_shutdown, cannot_connect_now (starting up / shutting down).
const UNREACHABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03']);
// node-postgres raises these without a code when a connection dies under it.
const DROPPED = /Connection terminated|not queryable|timeout exceeded when trying to connect/;

/**
 * Whether an error (or one of its causes) says the server went away or is
 * restarting, rather than that a statement was wrong: the failures a retry
 * after the server is back can cure.
 */
export function isPostgresUnavailable(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth += 1) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && (UNREACHABLE_ERRNOS.has(code) || UNREACHABLE_SQLSTATES.has(code) || code.startsWith('08'))) return true;
    if (DROPPED.test(e.message)) return true;
  }
  return false;
}

/** Polls the server until it answers (true) or deadlineMs has passed (false); one try when deadlineMs is 0. */
export async function waitForPostgres(pool: pg.Pool, deadlineMs: number): Promise<boolean> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    try {
      await pool.query('SELECT 1');
      return true;
    } catch (err) {
      if (!isPostgresUnavailable(err) || Date.now() >= until) return false;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

/** Runs fn inside BEGIN/COMMIT, rolling back on any error. */
export async function withTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/** Quotes an identifier once, for the few statements that cannot take $n (roles, GRANT). */
export function ident(name: string): string {
  return pg.escapeIdentifier(name);
}

/** The database named in a URL, and a URL for the server's maintenance database. */
export function splitDatabaseUrl(url: string): { database: string; maintenanceUrl: string } {
  const parsed = new URL(url);
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  parsed.pathname = '/postgres';
  return { database, maintenanceUrl: parsed.toString() };
}
