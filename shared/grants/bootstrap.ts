import type pg from 'pg';
import { isPgError } from '../db/errors.js';
import { ident } from '../db/pool.js';
import { ADMIN_ROLE, APP_ROLE, APP_WRITES, GOVERNED_SCHEMAS, REQUIRED_GRANTS } from './matrix.js';
import { grantStatement } from './package.js';

/**
 * The roles and grants `cutter db migrate` sets up: workflow_admin, the exec
 * role and the application's role exist, workflow_admin owns the governed
 * objects, the exec role holds exactly the grant matrix, and the
 * application's role exactly its own (matrix.ts).
 */

/**
 * Roles are cluster-wide: another database's migrate may create the same one
 * concurrently. A login role is created without a password: the database
 * administrator gives it one (or a certificate, or peer authentication).
 */
export async function ensureRole(client: pg.ClientBase, role: string, options: { login?: boolean } = {}): Promise<void> {
  const exists = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role]);
  if (exists.rowCount) return;
  try {
    await client.query(`CREATE ROLE ${ident(role)} ${options.login ? 'LOGIN' : 'NOLOGIN'} NOSUPERUSER NOCREATEDB NOCREATEROLE`);
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
export async function applyOwnershipAndGrants(client: pg.ClientBase, execRole: string): Promise<void> {
  const exec = ident(execRole);
  const admin = ident(ADMIN_ROLE);
  const app = ident(APP_ROLE);
  const me = await client.query<{ rolsuper: boolean; rolname: string }>(
    'SELECT rolsuper, rolname FROM pg_roles WHERE rolname = current_user',
  );
  const superuser = me.rows[0]?.rolsuper === true;
  await ensureRole(client, APP_ROLE, { login: true });
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
      if (o.kind !== 'SCHEMA') await client.query(`REVOKE ALL ON ${o.kind} ${o.name} FROM ${exec}, ${app}`);
      if (o.kind === 'FUNCTION') await client.query(`REVOKE ALL ON FUNCTION ${o.name} FROM PUBLIC`);
    }
    // Schema privileges too (USAGE included): an older matrix's grants must not outlive it.
    for (const schema of GOVERNED_SCHEMAS) await client.query(`REVOKE ALL ON SCHEMA ${ident(schema)} FROM ${exec}, ${app}`);
    for (const grant of REQUIRED_GRANTS) await client.query(grantStatement(grant, execRole));
    await grantApplication(client, app, exec);
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

/** The application's role: read everything, call the functions, write its own governance rows, SET ROLE to the exec role. */
async function grantApplication(client: pg.ClientBase, app: string, exec: string): Promise<void> {
  for (const schema of GOVERNED_SCHEMAS) {
    const s = ident(schema);
    await client.query(`GRANT USAGE ON SCHEMA ${s} TO ${app}`);
    await client.query(`GRANT SELECT ON ALL TABLES IN SCHEMA ${s} TO ${app}`);
    await client.query(`GRANT SELECT ON ALL SEQUENCES IN SCHEMA ${s} TO ${app}`);
  }
  await client.query(`GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA cutter_governance TO ${app}`);
  for (const [table, privileges] of Object.entries(APP_WRITES)) {
    const [schema, name] = table.split('.');
    await client.query(`GRANT ${privileges.join(', ')} ON TABLE ${ident(schema ?? '')}.${ident(name ?? '')} TO ${app}`);
  }
  await client.query(`GRANT ${exec} TO ${app}`);
}
