import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import pg from 'pg';
import { CutterError } from '../errors.js';
import { ADMIN_ROLE, GOVERNED_SCHEMAS, REQUIRED_GRANTS } from '../grants/matrix.js';
import { grantStatement } from '../grants/package.js';
import { isPgError } from './errors.js';
import { ident, splitDatabaseUrl } from './pool.js';

/**
 * Numbered, append-only .sql migrations, applied under an advisory lock with
 * a ledger table. Each file runs in its own transaction together with its
 * ledger row, so a crash leaves it either applied and recorded or neither.
 */

const MIGRATIONS_DIR = new URL('./migrations/', import.meta.url);
// Any constant works; it only has to be the same for every cutter process.
const MIGRATION_LOCK_KEY = 0x6375_7474; // "cutt"

export interface MigrationFile {
  version: number;
  name: string;
  sql: string;
  sha256: string;
}

export interface MigrateResult {
  databaseCreated: boolean;
  applied: string[];
  alreadyApplied: number;
}

/** Reads the migration files in order; numbers may have gaps but never repeat. */
export async function loadMigrations(dir: URL = MIGRATIONS_DIR): Promise<MigrationFile[]> {
  const names = (await readdir(dir)).filter((n) => n.endsWith('.sql')).sort();
  const files: MigrationFile[] = [];
  for (const name of names) {
    const match = /^(\d{3})_[a-z0-9_]+\.sql$/.exec(name);
    if (!match) throw new CutterError('MIGRATION_NAME', `migration file ${name} is not named NNN_words.sql`);
    const sql = await readFile(new URL(name, dir), 'utf8');
    const version = Number(match[1]);
    if (files.some((f) => f.version === version)) {
      throw new CutterError('MIGRATION_NAME', `two migration files share number ${match[1]}`);
    }
    files.push({ version, name, sql, sha256: createHash('sha256').update(sql).digest('hex') });
  }
  return files;
}

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

/** Brings the database to the newest schema and resets the exec role to the grant matrix. */
export async function migrate(url: string, options: { execRole: string }): Promise<MigrateResult> {
  const databaseCreated = await ensureDatabase(url);
  const migrations = await loadMigrations();
  const client = new pg.Client({ connectionString: url, application_name: 'cutter-migrate' });
  await client.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    await ensureRole(client, ADMIN_ROLE);
    await ensureRole(client, options.execRole);
    await client.query('CREATE SCHEMA IF NOT EXISTS cutter_governance');
    await client.query(`CREATE TABLE IF NOT EXISTS cutter_governance.schema_migration (
      version integer PRIMARY KEY, name text NOT NULL, sha256 text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now())`);
    const ledger = await client.query<{ version: number; name: string; sha256: string }>(
      'SELECT version, name, sha256 FROM cutter_governance.schema_migration ORDER BY version',
    );
    const done = new Map(ledger.rows.map((r) => [r.version, r]));
    for (const row of ledger.rows) {
      const file = migrations.find((m) => m.version === row.version);
      if (!file) {
        throw new CutterError('MIGRATION_UNKNOWN', `the database has migration ${row.name}, which this cutter does not know: is it older than the database?`);
      }
      if (file.sha256 !== row.sha256) {
        throw new CutterError('MIGRATION_EDITED', `migration ${row.name} was edited after it was applied; migrations are append-only, add a new file instead`);
      }
    }
    const applied: string[] = [];
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      await client.query('BEGIN');
      try {
        await client.query(m.sql);
        await client.query('INSERT INTO cutter_governance.schema_migration (version, name, sha256) VALUES ($1, $2, $3)', [
          m.version,
          m.name,
          m.sha256,
        ]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK');
        throw new CutterError('MIGRATION_FAILED', `migration ${m.name} failed: ${(err as Error).message}`, { cause: err });
      }
      applied.push(m.name);
    }
    await applyOwnershipAndGrants(client, options.execRole);
    return { databaseCreated, applied, alreadyApplied: done.size };
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
    await client.end();
  }
}

/** Roles are cluster-wide: another database's migrate may create the same one concurrently. */
async function ensureRole(client: pg.Client, role: string): Promise<void> {
  const exists = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role]);
  if (exists.rowCount) return;
  try {
    await client.query(`CREATE ROLE ${ident(role)} NOLOGIN`);
  } catch (err) {
    if (isPgError(err, '42710') || isPgError(err, '23505')) return;
    throw err;
  }
}

/**
 * workflow_admin owns the governed schemas and everything in them; the exec
 * role gets exactly the matrix: everything it holds on governed objects is
 * revoked first, then the required rows are granted.
 */
async function applyOwnershipAndGrants(client: pg.Client, execRole: string): Promise<void> {
  const exec = ident(execRole);
  const admin = ident(ADMIN_ROLE);
  const me = await client.query<{ rolsuper: boolean; rolname: string }>(
    'SELECT rolsuper, rolname FROM pg_roles WHERE rolname = current_user',
  );
  const superuser = me.rows[0]?.rolsuper === true;
  await client.query('BEGIN');
  try {
    const objects = await client.query<{ kind: string; name: string }>(
      `SELECT 'SCHEMA' AS kind, quote_ident(n.nspname) AS name FROM pg_namespace n WHERE n.nspname = 'cutter_governance'
       UNION ALL
       SELECT CASE c.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, quote_ident(n.nspname) || '.' || quote_ident(c.relname)
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'p', 'S')
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'i')
       UNION ALL
       SELECT 'FUNCTION', p.oid::regprocedure::text
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = ANY($1) AND p.prokind = 'f'`,
      [[...GOVERNED_SCHEMAS]],
    );
    for (const o of objects.rows) {
      // Sequences owned by a column follow their table (ALTER TABLE covers them).
      if (superuser && o.kind !== 'SEQUENCE') {
        const alter = o.kind === 'FUNCTION' ? 'FUNCTION' : o.kind;
        await client.query(`ALTER ${alter} ${o.name} OWNER TO ${admin}`);
      }
      if (o.kind !== 'SCHEMA') await client.query(`REVOKE ALL ON ${o.kind} ${o.name} FROM ${exec}`);
      if (o.kind === 'FUNCTION') await client.query(`REVOKE ALL ON FUNCTION ${o.name} FROM PUBLIC`);
    }
    for (const schema of GOVERNED_SCHEMAS) await client.query(`REVOKE CREATE ON SCHEMA ${ident(schema)} FROM ${exec}`);
    for (const grant of REQUIRED_GRANTS) await client.query(grantStatement(grant, execRole));
    if (!superuser) {
      // The application's login must be able to SET LOCAL ROLE to the exec role.
      await client.query(`GRANT ${exec} TO CURRENT_USER`);
    }
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK');
    throw err;
  }
}
