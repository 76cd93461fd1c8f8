import type { Config } from '../config.js';
import { splitDatabaseUrl, type Pool } from '../db/pool.js';
import { CutterError } from '../errors.js';
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
  const checks = [
    `${result.rows.length} rows of the deployment grant matrix read live from the catalog for role ${role} in database ${database}; ${failing.length} fail`,
    ...failing.map((r) => `${r.expected === 'held' ? 'missing' : 'excess'}: ${describeRow(r, role)}`),
  ];
  if (result.ok) return { name: GRANT_PROBE, runnable: 'YES', verified: checks[0] ?? '', checks, blockers: [], failure: null };
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
    ],
    failure: null,
  };
}
