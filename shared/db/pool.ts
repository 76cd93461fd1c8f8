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

/** A pool for one database URL; the application name shows in pg_stat_activity. */
export function createPool(url: string, options: { max?: number; applicationName?: string } = {}): pg.Pool {
  return new pg.Pool({
    connectionString: url,
    max: options.max ?? 10,
    application_name: options.applicationName ?? 'cutter',
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 10_000,
  });
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
