import type { Pool, PoolClient } from '../db/pool.js';

/**
 * Every Postgres read of the readiness check goes through here: a READ ONLY
 * transaction that is always rolled back. Postgres itself then refuses any
 * write the check might attempt by mistake (SQLSTATE 25006), so "readiness
 * writes nothing" holds by construction, not only by care.
 */

/** Runs fn inside BEGIN READ ONLY … ROLLBACK on a client of its own. */
export async function readOnly<T>(pool: Pool, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN TRANSACTION READ ONLY');
    // A migration holding an exclusive lock must not hang the check forever.
    await client.query(`SET LOCAL lock_timeout = '10s'`);
    return await fn(client);
  } catch (err) {
    broken = err instanceof Error ? err : undefined;
    throw err;
  } finally {
    try {
      await client.query('ROLLBACK');
      broken = undefined; // the connection is healthy again: give it back
    } catch {
      // The connection itself failed; the pool must not hand it out again.
    }
    client.release(broken);
  }
}
