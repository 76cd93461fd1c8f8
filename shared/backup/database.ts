import { ident, splitDatabaseUrl } from '../db/pool.js';
import { BackupRunnerError } from './errors.js';
import { connect, databaseName, serverOf } from './pgtools.js';

/** Databases a restore or drill writes into: created when missing, checked for emptiness, dropped when scratch. */

async function onMaintenance<T>(url: string, fn: (client: Awaited<ReturnType<typeof connect>>, database: string) => Promise<T>): Promise<T> {
  const { database, maintenanceUrl } = splitDatabaseUrl(url);
  let client;
  try {
    client = await connect(maintenanceUrl, 'cutter-restore');
  } catch (err) {
    throw new BackupRunnerError('DB_UNREACHABLE', `cannot connect to the server ${serverOf(url)}: ${(err as Error).message}`, { cause: err });
  }
  try {
    return await fn(client, database);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Creates the database a URL names when it does not exist; says whether it did. */
export async function ensureDatabase(url: string): Promise<boolean> {
  return onMaintenance(url, async (client, database) => {
    const found = await client.query('SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1', [database]);
    if (found.rowCount) return false;
    // template0: a restore must not meet objects someone added to template1.
    await client.query(`CREATE DATABASE ${ident(database)} TEMPLATE template0`);
    return true;
  });
}

/** Drops a database (used only for scratch databases this process created). */
export async function dropDatabaseAt(url: string): Promise<void> {
  await onMaintenance(url, async (client, database) => {
    await client.query(`DROP DATABASE IF EXISTS ${ident(database)} WITH (FORCE)`);
  });
}

/**
 * What a database holds besides what every new database has: relations,
 * functions and types in user schemas, schemas other than public, extensions
 * other than plpgsql. Empty means none of these.
 */
export async function userObjectCount(url: string): Promise<number> {
  let client;
  try {
    client = await connect(url, 'cutter-restore');
  } catch (err) {
    throw new BackupRunnerError('DB_UNREACHABLE', `cannot connect to ${databaseName(url)} on ${serverOf(url)}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const result = await client.query<{ n: string }>(
      `WITH user_ns AS (
         SELECT oid, nspname FROM pg_catalog.pg_namespace
          WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg\\_%')
       SELECT ((SELECT count(*) FROM pg_catalog.pg_class WHERE relnamespace IN (SELECT oid FROM user_ns))
             + (SELECT count(*) FROM pg_catalog.pg_proc WHERE pronamespace IN (SELECT oid FROM user_ns))
             + (SELECT count(*) FROM pg_catalog.pg_type
                 WHERE typnamespace IN (SELECT oid FROM user_ns) AND typrelid = 0 AND typcategory <> 'A')
             + (SELECT count(*) FROM user_ns WHERE nspname <> 'public')
             + (SELECT count(*) FROM pg_catalog.pg_extension WHERE extname <> 'plpgsql'))::text AS n`,
    );
    return Number(result.rows[0]?.n ?? 0);
  } finally {
    await client.end().catch(() => undefined);
  }
}
