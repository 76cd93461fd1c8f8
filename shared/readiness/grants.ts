import type { Config } from '../config.js';
import { splitDatabaseUrl, type Pool, type PoolClient } from '../db/pool.js';
import { CutterError } from '../errors.js';
import { APP_ROLE } from '../grants/matrix.js';
import { renderGrantPackage } from '../grants/package.js';
import { describeRow, probeGrants } from '../grants/probe.js';
import { readOnly } from './read-only.js';
import { blocker, messageOf, type PackageResult } from './types.js';

export const GRANT_PROBE = 'grant probe';

/** The grant-probe phase's live matrix, read-only; a failing matrix yields the GRANT package as the blocker's form. */
export async function checkGrantProbe(cfg: Config, pool: Pool): Promise<PackageResult> {
  const role = cfg.CUTTER_EXEC_ROLE;
  const { database } = splitDatabaseUrl(cfg.DATABASE_URL);
  let result;
  try {
    result = await readOnly(pool, (client) => probeGrants(client, role));
  } catch (err) {
    // The role or a matrix object is missing: the schema is not migrated, which only workflow_admin can do.
    if (err instanceof CutterError && (err.code === 'EXEC_ROLE_MISSING' || err.code === 'GRANTS_OBJECT_MISSING')) {
      return {
        name: GRANT_PROBE,
        runnable: 'NO',
        verified: `live matrix for role ${role} in database ${database}: could not be probed (${err.code})`,
        checks: [err.message],
        blockers: [blocker('workflow_admin', `\`cutter db migrate\` run by workflow_admin against database ${database} (it creates role ${role} and its grants)`, err.message)],
        failure: null,
      };
    }
    return { name: GRANT_PROBE, runnable: 'NO', verified: 'not checked', checks: [], blockers: [], failure: `grant probe: ${messageOf(err)}` };
  }
  const failing = result.rows.filter((r) => !r.ok);
  const superusers = await readOnly(pool, superuserLogins);
  const checks = [
    `${result.rows.length} rows of the deployment grant matrix read live from the catalog for role ${role} in database ${database}; ${failing.length} fail`,
    ...failing.map((r) => `${r.expected === 'held' ? 'missing' : 'excess'}: ${describeRow(r, role)}`),
    superusers.length ? `superuser login(s) connected as cutter: ${superusers.join(', ')}` : `no cutter process is connected as a superuser`,
  ];
  const notes = superusers.length
    ? [
        blocker(
          'workflow_admin',
          `the workers, the board and the CLI connected as ${APP_ROLE} (or a login granted it) instead of ${superusers.join(', ')}`,
          'a superuser is bound by none of the rules PostgreSQL enforces (the exec role, apply_plan, the audit chain); only `cutter db migrate` and an in-place restore need one',
          { blocking: false },
        ),
      ]
    : [];
  if (result.ok) return { name: GRANT_PROBE, runnable: 'YES', verified: checks[0] ?? '', checks, blockers: notes, failure: null };
  const pkg = renderGrantPackage(result, { database });
  return {
    name: GRANT_PROBE,
    runnable: 'NO',
    verified: checks[0] ?? '',
    checks,
    blockers: [
      blocker(
        'workflow_admin',
        'the GRANT package below, applied by workflow_admin (psql "$DATABASE_URL" -f package.sql, or cutter grants package | psql)',
        `role ${role} ${[
          result.missing.length ? `lacks ${result.missing.length} grant(s) of the matrix` : '',
          result.excess.length ? `holds ${result.excess.length} privilege(s) the matrix forbids` : '',
        ].filter(Boolean).join(' and ')}: ${failing.map((r) => describeRow(r, role)).join('; ')}`,
        { attachment: pkg },
      ),
      ...notes,
    ],
    failure: null,
  };
}

/** Superuser logins of this connection and of the cutter processes connected to the database now (by application_name). */
async function superuserLogins(client: PoolClient): Promise<string[]> {
  const { rows } = await client.query<{ login: string }>(
    `SELECT DISTINCT r.rolname AS login
       FROM pg_catalog.pg_roles r
      WHERE r.rolsuper
        AND (r.rolname = session_user
             OR r.rolname IN (SELECT a.usename FROM pg_catalog.pg_stat_activity a
                               WHERE a.datname = current_database() AND a.application_name IN ('cutter-worker', 'cutter-board', 'cutter-cli')))
      ORDER BY 1`,
  );
  return rows.map((r) => r.login);
}
