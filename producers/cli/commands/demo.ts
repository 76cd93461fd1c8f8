import { mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { Config } from '../../../shared/config.js';
import { migrate } from '../../../shared/db/migrate.js';
import { ensureDemoGpgKey } from '../../../shared/demo/gpg-key.js';
import { corpusSummary, registerDemoWorkTarget, seedDemo } from '../../../shared/demo/seed.js';
import { createLogger } from '../../../shared/logger.js';
import { createRedis } from '../../../shared/redis.js';
import { getRun } from '../../../shared/runs/store.js';
import { startFleet } from '../../../workers/fleet.js';
import { enqueueRun } from '../../flow/enqueue.js';
import { type CliContext, out, table } from '../context.js';
import { followRun } from '../follow.js';

const DEMO_SNAPSHOT = new URL('../../../../demo/icx-work.snapshot.ndjson', import.meta.url).pathname;

/**
 * The demo's backup settings: the operator's own when BACKUP_GPG_FPR is set,
 * otherwise a throwaway key and directory under ~/.cutter-demo.
 */
async function demoConfig(cfg: Config): Promise<Config> {
  if (cfg.BACKUP_GPG_FPR && cfg.BACKUP_DIR) return cfg;
  const base = join(homedir(), '.cutter-demo');
  const gnupgHome = join(base, 'gnupg');
  const backupDir = join(base, 'backups');
  mkdirSync(backupDir, { recursive: true });
  const fpr = await ensureDemoGpgKey(gnupgHome);
  return { ...cfg, BACKUP_GPG_FPR: fpr, GNUPGHOME: gnupgHome, BACKUP_DIR: backupDir };
}

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
    .description('migrate, seed, then a dry run of the demo snapshot with in-process workers (the quickstart)')
    .action(async () => {
      const c = ctx();
      out('1. migrate');
      await migrate(c.cfg.DATABASE_URL, { execRole: c.cfg.CUTTER_EXEC_ROLE });
      out('   schema up to date');
      out('2. seed the demo corpus');
      const seeded = await seedDemo(c.db(), c.cfg.CUTTER_OPERATOR);
      await registerDemoWorkTarget(c.db(), c.cfg.CUTTER_OPERATOR);
      out(`   ${seeded.unitsInserted} unit(s) inserted`);
      out('3. corpus summary');
      const rows = await corpusSummary(c.db());
      out(table(['corpus', 'state', 'units', 'versions'], rows.map((r) => [r.corpus, r.state, r.units, r.versions])));
      out(`total: ${rows.reduce((n, r) => n + r.units, 0)} units`);

      out('4. dry run of demo/icx-work.snapshot.ndjson against target icx-work');
      const cfg = await demoConfig(c.cfg);
      const fleet = await startFleet({ cfg, log: createLogger({ level: 'warn' }) });
      const redis = createRedis(cfg.REDIS_URL);
      try {
        const { runId } = await enqueueRun(
          { pool: c.db(), redis, prefix: cfg.CUTTER_QUEUE_PREFIX },
          { target: 'icx-work', snapshotPath: DEMO_SNAPSHOT, mode: 'dry', operator: cfg.CUTTER_OPERATOR, approvalWindowS: 3600 },
        );
        const view = await followRun(c.db(), runId, { print: out, until: () => false });
        out(`   run ${runId}: ${view.status}, verdict ${view.verdict ?? 'none'}`);
        out('');
        out((await getRun(c.db(), runId))?.report ?? '');
        process.exitCode = view.verdict === 'PASS' ? 0 : 1;
      } finally {
        redis.disconnect();
        await fleet.close();
      }
    });
}
