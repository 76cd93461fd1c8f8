import { applyFunctionFiles, type FunctionFilesResult, loadFunctionFiles } from '../db/function-files.js';
import { ensureDatabase } from '../db/ensure-database.js';
import { withMigrationLock } from '../db/migration-lock.js';
import { applyNumberedMigrations, loadMigrations, type NumberedMigrationsResult } from '../db/numbered-migrations.js';
import { applyOwnershipAndGrants, ensureRole } from '../grants/bootstrap.js';
import { ADMIN_ROLE } from '../grants/matrix.js';

/**
 * `cutter db migrate` whole: the database, the numbered migrations, the
 * function and trigger files, the roles and the grant matrix. It sits above
 * shared/db and shared/grants so that neither imports the other's way up.
 */

export interface MigrateResult extends NumberedMigrationsResult {
  databaseCreated: boolean;
  routines: FunctionFilesResult;
}

/** Brings the database to the newest schema and resets the exec role to the grant matrix. */
export async function migrate(url: string, options: { execRole: string }): Promise<MigrateResult> {
  const databaseCreated = await ensureDatabase(url);
  const migrations = await loadMigrations();
  const functionFiles = await loadFunctionFiles();
  return withMigrationLock(url, async (client) => {
    await ensureRole(client, ADMIN_ROLE);
    await ensureRole(client, options.execRole);
    const numbered = await applyNumberedMigrations(client, migrations);
    const routines = await applyFunctionFiles(client, functionFiles);
    await applyOwnershipAndGrants(client, options.execRole);
    return { databaseCreated, ...numbered, routines };
  });
}
