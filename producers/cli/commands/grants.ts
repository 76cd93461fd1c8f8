import type { Command } from 'commander';
import { splitDatabaseUrl } from '../../../shared/db/pool.js';
import { renderGrantPackage } from '../../../shared/grants/package.js';
import { grantProbeError, probeGrants } from '../../../shared/grants/probe.js';
import { type CliContext, out, outJson, table } from '../context.js';

/**
 * `cutter grants probe [--json]` and `cutter grants package`.
 *
 * --json prints {ok, role, database, rows: [{object, kind, privilege,
 * expected, actual, ok}], missing, excess, package}; missing and excess are
 * lists of SQL statements, package is the psql-ready text of both.
 */
export function registerGrantsCommands(program: Command, ctx: () => CliContext): void {
  const grants = program.command('grants').description('the deployment grant matrix of the exec role');

  grants
    .command('probe')
    .description('check the exec role against the grant matrix, live; exit 1 and print the grant package when a row fails')
    .option('--json', 'print one JSON object')
    .action(async (options: { json?: boolean }) => {
      const c = ctx();
      const { database } = splitDatabaseUrl(c.cfg.DATABASE_URL);
      const result = await probeGrants(c.db(), c.cfg.CUTTER_EXEC_ROLE);
      const pkg = renderGrantPackage(result, { database });
      if (options.json) {
        outJson({ ok: result.ok, role: result.role, database, rows: result.rows, missing: result.missing, excess: result.excess, package: pkg });
      } else {
        out(`grant probe: role ${result.role}, database ${database}`);
        out(
          table(
            ['kind', 'object', 'privilege', 'expected', 'actual', 'result'],
            result.rows.map((r) => [r.kind, r.object, r.privilege, r.expected, r.actual ? 'TRUE' : 'FALSE', r.ok ? 'OK' : 'FAIL']),
          ),
        );
        const failing = result.rows.filter((r) => !r.ok).length;
        out(result.ok ? `PASS: all ${result.rows.length} rows hold` : `FAIL: ${failing} of ${result.rows.length} rows fail`);
        if (!result.ok) {
          out();
          out('grant package (cutter grants package | psql "$DATABASE_URL"):');
          process.stdout.write(pkg);
        }
      }
      const error = grantProbeError(result);
      if (error) throw error;
    });

  grants
    .command('package')
    .description('print the DDL that brings the exec role to the matrix (GRANT what is missing, REVOKE what is excess), ready for psql')
    .action(async () => {
      const c = ctx();
      const result = await probeGrants(c.db(), c.cfg.CUTTER_EXEC_ROLE);
      process.stdout.write(renderGrantPackage(result, { database: splitDatabaseUrl(c.cfg.DATABASE_URL).database }));
    });
}
