import pg from 'pg';
import { isPgError } from './errors.js';
import { ident, splitDatabaseUrl } from './pool.js';

/** Creates the database named in the URL when it does not exist; true when it created it. */
export async function ensureDatabase(url: string): Promise<boolean> {
  const { database, maintenanceUrl } = splitDatabaseUrl(url);
  const client = new pg.Client({ connectionString: maintenanceUrl });
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (found.rowCount) return false;
    try {
      await client.query(`CREATE DATABASE ${ident(database)} ENCODING 'UTF8' TEMPLATE template0`);
      return true;
    } catch (err) {
      // Another migrate created it between our check and our CREATE.
      if (isPgError(err, '42P04') || isPgError(err, '23505')) return false;
      throw err;
    }
  } finally {
    await client.end();
  }
}
