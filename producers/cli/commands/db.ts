import type { Command } from 'commander';
import { migrate } from '../../../shared/deploy/migrate.js';
import { redactUrl } from '../../../shared/logger.js';
import { type CliContext, out } from '../context.js';

/** `cutter db migrate`. */
export function registerDbCommands(program: Command, ctx: () => CliContext): void {
  const db = program.command('db').description('database schema');
  db.command('migrate')
    .description('create the database if missing, apply migrations and the function files, create roles and grants')
    .action(async () => {
      const { cfg } = ctx();
      const result = await migrate(cfg.DATABASE_URL, { execRole: cfg.CUTTER_EXEC_ROLE });
      if (result.databaseCreated) out(`created database ${redactUrl(cfg.DATABASE_URL)}`);
      for (const note of result.amended) out(`ledger: amended ${note}`);
      if (result.squashed) {
        out(`ledger: ${result.squashed.replaced.join(', ')} replaced by ${result.squashed.by.join(', ')} (already in effect, not run again)`);
      }
      out(
        result.applied.length
          ? `applied ${result.applied.length} migration(s): ${result.applied.join(', ')}`
          : `schema up to date (${result.alreadyApplied} migrations already applied)`,
      );
      const { routines } = result;
      out(`functions: ${routines.functions} and triggers: ${routines.triggers} (re)applied from their files`);
      if (routines.recreated.length) out(`recreated (signature changed): ${routines.recreated.join(', ')}`);
      if (routines.dropped.length) out(`dropped (no file defines them any more): ${routines.dropped.join(', ')}`);
      out(`roles: workflow_admin, ${cfg.CUTTER_EXEC_ROLE} (grants reset to the deployment matrix)`);
    });
}
