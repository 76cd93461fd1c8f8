import { isPgError } from './errors.js';
import type { PoolClient } from './pool.js';

/**
 * Runs fn so that, if it throws, nothing it wrote survives: under a savepoint
 * when the caller already has a transaction open (so the caller's own work
 * stays usable), or in a transaction of its own when not.
 */
export async function atomically<T>(client: PoolClient, fn: () => Promise<T>): Promise<T> {
  let own = false;
  try {
    await client.query('SAVEPOINT cutter_atomic');
  } catch (err) {
    // 25P01: SAVEPOINT outside a transaction block, so open one.
    if (!isPgError(err, '25P01')) throw err;
    await client.query('BEGIN');
    own = true;
  }
  try {
    const result = await fn();
    await client.query(own ? 'COMMIT' : 'RELEASE SAVEPOINT cutter_atomic');
    return result;
  } catch (err) {
    await client.query(own ? 'ROLLBACK' : 'ROLLBACK TO SAVEPOINT cutter_atomic').catch(() => undefined);
    throw err;
  }
}
