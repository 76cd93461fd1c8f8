import type { Command } from 'commander';
import type { Config } from '../../../shared/config.js';
import { migrate, type MigrateResult } from '../../../shared/deploy/migrate.js';
import { redactUrl } from '../../../shared/logger.js';
import { type CliContext, out } from '../context.js';

/** `cutter db migrate`. */
export function registerDbCommands(program: Command, ctx: () => CliContext): void {
  const db = program.command('db').description('database schema');
  db.command('migrate')
    .description('create the database if missing, apply migrations and the function files, create roles and grants')
    .action(async () => {
      const { cfg } = ctx();
      for (const line of migrationLines(await migrate(cfg.DATABASE_URL, { execRole: cfg.CUTTER_EXEC_ROLE }), cfg)) out(line);
    });
}

/** What a migration did, in the lines `cutter db migrate` prints (the demo prints them too). */
export function migrationLines(result: MigrateResult, cfg: Pick<Config, 'DATABASE_URL' | 'CUTTER_EXEC_ROLE'>): string[] {
  const lines: string[] = [];
  if (result.databaseCreated) lines.push(`created database ${redactUrl(cfg.DATABASE_URL)}`);
  for (const note of result.amended) lines.push(`ledger: amended ${note}`);
  if (result.squashed) {
    lines.push(`ledger: ${result.squashed.replaced.join(', ')} replaced by ${result.squashed.by.join(', ')} (already in effect, not run again)`);
  }
  lines.push(
    result.applied.length
      ? `applied ${result.applied.length} migration(s): ${result.applied.join(', ')}`
      : `schema up to date (${result.alreadyApplied} migrations already applied)`,
  );
  const { routines } = result;
  lines.push(`functions: ${routines.functions} and triggers: ${routines.triggers} (re)applied from their files`);
  if (routines.recreated.length) lines.push(`recreated (signature changed): ${routines.recreated.join(', ')}`);
  if (routines.dropped.length) lines.push(`dropped (no file defines them any more): ${routines.dropped.join(', ')}`);
  lines.push(`roles: workflow_admin, ${cfg.CUTTER_EXEC_ROLE} (grants reset to the deployment matrix)`);
  return lines;
}
