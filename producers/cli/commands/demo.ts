import type { Command } from 'commander';
import { migrate } from '../../../shared/db/migrate.js';
import { corpusSummary, seedDemo } from '../../../shared/demo/seed.js';
import { type CliContext, out, table } from '../context.js';

/** `cutter demo seed` and `cutter demo` (what `npm run demo` runs). */
export function registerDemoCommands(program: Command, ctx: () => CliContext): void {
  const demo = program.command('demo').description('the demo corpus');

  demo
    .command('seed')
    .description('load the fixed demo corpus (idempotent)')
    .action(async () => {
      const c = ctx();
      const result = await seedDemo(c.db(), c.cfg.CUTTER_OPERATOR);
      out(`demo seed: ${result.unitsInserted} unit(s) inserted${result.targetRegistered ? ', target icx-const registered' : ''}`);
    });

  demo
    .command('run', { isDefault: true })
    .description('migrate, seed and show the corpus (the quickstart)')
    .action(async () => {
      const c = ctx();
      out('1. migrate');
      await migrate(c.cfg.DATABASE_URL, { execRole: c.cfg.CUTTER_EXEC_ROLE });
      out('   schema up to date');
      out('2. seed the demo corpus');
      const seeded = await seedDemo(c.db(), c.cfg.CUTTER_OPERATOR);
      out(`   ${seeded.unitsInserted} unit(s) inserted`);
      out('3. corpus summary');
      const rows = await corpusSummary(c.db());
      out(table(['corpus', 'state', 'units', 'versions'], rows.map((r) => [r.corpus, r.state, r.units, r.versions])));
      const total = rows.reduce((n, r) => n + r.units, 0);
      out(`total: ${total} units`);
    });
}
