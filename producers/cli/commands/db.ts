import type { Command } from 'commander';
import { migrate } from '../../../shared/db/migrate.js';
import { redactUrl } from '../../../shared/logger.js';
import { type CliContext, out } from '../context.js';

/** `cutter db migrate`. */
export function registerDbCommands(program: Command, ctx: () => CliContext): void {
  const db = program.command('db').description('database schema');
  db.command('migrate')
    .description('create the database if missing, apply migrations, create roles and grants')
    .action(async () => {
      const { cfg } = ctx();
      const result = await migrate(cfg.DATABASE_URL, { execRole: cfg.CUTTER_EXEC_ROLE });
      if (result.databaseCreated) out(`created database ${redactUrl(cfg.DATABASE_URL)}`);
      out(
        result.applied.length
          ? `applied ${result.applied.length} migration(s): ${result.applied.join(', ')}`
          : `schema up to date (${result.alreadyApplied} migrations already applied)`,
      );
      out(`roles: workflow_admin, ${cfg.CUTTER_EXEC_ROLE} (grants reset to the deployment matrix)`);
    });
}
