import pg from 'pg';

// Any constant works; it only has to be the same for every cutter process.
const MIGRATION_LOCK_KEY = 0x6375_7474; // "cutt"

/**
 * Runs fn on one connection to the database holding the migration lock, a
 * session advisory lock: two migrates of one database take turns, so the
 * second finds the first's work done.
 */
export async function withMigrationLock<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, application_name: 'cutter-migrate' });
  await client.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    return await fn(client);
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
    await client.end();
  }
}
