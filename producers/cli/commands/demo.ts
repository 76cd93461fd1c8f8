import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { RedisClient } from '../../../shared/redis.js';
import type { Config } from '../../../shared/config.js';
import type { Pool } from '../../../shared/db/pool.js';
import { migrate } from '../../../shared/deploy/migrate.js';
import { demoHome } from '../../../shared/demo/files.js';
import { ensureDemoGpgKey } from '../../../shared/demo/gpg-key.js';
import { localSovereign, type LocalSovereign } from '../../../shared/demo/sovereign.js';
import { corpusSummary, registerDemoWorkTarget, seedDemo, type SeedResult } from '../../../shared/demo/seed.js';
import { createLogger } from '../../../shared/logger.js';
import { createRedis } from '../../../shared/redis.js';
import { getRun } from '../../../shared/runs/store.js';
import { startFleet } from '../../../workers/fleet.js';
import { enqueueRun } from '../../flow/enqueue.js';
import { type CliContext, out, table } from '../context.js';
import { migrationLines } from './db.js';
import { followRun } from '../follow.js';

const DEMO_SNAPSHOT = new URL('../../../../demo/icx-work.snapshot.ndjson', import.meta.url).pathname;

/**
 * The demo's backup settings: the operator's own when BACKUP_GPG_FPR is set,
 * otherwise a throwaway key and directory under ~/.cutter-demo.
 */
async function demoConfig(cfg: Config, sovereignKeys: string): Promise<Config> {
  // The demo's own sovereign is the only trusted key, and the demo accepts a
  // volatile Redis (the report says so); a real deployment sets neither.
  const withDemo = { ...cfg, SOVEREIGN_KEYS: sovereignKeys, CUTTER_ALLOW_VOLATILE_REDIS: true };
  if (cfg.BACKUP_GPG_FPR && cfg.BACKUP_DIR) return withDemo;
  const gnupgHome = join(demoHome(), 'gnupg');
  const backupDir = join(demoHome(), 'backups');
  mkdirSync(backupDir, { recursive: true });
  const fpr = await ensureDemoGpgKey(gnupgHome);
  return { ...withDemo, BACKUP_GPG_FPR: fpr, GNUPGHOME: gnupgHome, BACKUP_DIR: backupDir };
}

/**
 * What the demo set for its own workers, said out loud: these settings hold
 * for this process only, and a first live run by hand needs its own (a
 * durable Redis above all, or PRECHECK_REDIS_VOLATILE stops it).
 */
function demoSettingLines(before: Config, demo: Config): string[] {
  const lines = [
    'settings of this demo process only (your environment is unchanged):',
    `  SOVEREIGN_KEYS=${demo.SOVEREIGN_KEYS ?? ''} (the demo sovereign's keys, the only trusted ones)`,
    '  CUTTER_ALLOW_VOLATILE_REDIS=true (a live run by hand needs Redis with appendonly yes and maxmemory-policy noeviction, or this set deliberately)',
  ];
  if (demo.BACKUP_GPG_FPR !== before.BACKUP_GPG_FPR) {
    lines.push(`  BACKUP_GPG_FPR=${demo.BACKUP_GPG_FPR ?? ''} GNUPGHOME=${demo.GNUPGHOME ?? ''} BACKUP_DIR=${demo.BACKUP_DIR ?? ''} (a throwaway backup key)`);
  }
  return lines;
}

/** The demo sovereign's folder: its keys sign the seed's history and the demo's live run. */
const SOVEREIGN_DIR = () => join(demoHome(), 'sovereign');

/** What a seed did and the history it stands on, one line each. */
function seedLines(seeded: SeedResult): string[] {
  const lines = [`${seeded.unitsInserted} unit(s) inserted`];
  if (seeded.targetsRegistered.length) lines.push(`target(s) registered: ${seeded.targetsRegistered.join(', ')}`);
  for (const r of seeded.runs) {
    lines.push(`${r.run_id}: ${r.mode} on ${r.target}, ${r.status}, verdict ${r.verdict ?? 'none'}${seeded.runsReplayed.includes(r.run_id) ? ' (history replayed now)' : ''}`);
  }
  if (!seeded.runs.length) lines.push('no history: this corpus was loaded by a seed older than the demo history (seed an empty database to have it)');
  return lines;
}

/**
 * Step 5: the same snapshot, live — paused at SG_1, approved by the demo
 * sovereign (SG_1 + EXEC through the real submit path), executed, verified.
 * Skipped once the corpus already holds the cut. Returns the run id, null
 * when skipped, or FAILED.
 */
async function demoLiveRun(args: { cfg: Config; pool: Pool; redis: RedisClient; sovereign: LocalSovereign }): Promise<string | null> {
  const { cfg, pool, redis, sovereign } = args;
  out('5. live run of the same snapshot, approved by the demo sovereign key (demo only)');
  const cut = await pool.query(`SELECT 1 FROM public.information_unit WHERE corpus = 'ICX-WORK' AND key = 'ICX-WORK/099'`);
  if (cut.rowCount) {
    out('   skipped: the demo snapshot is already applied (ICX-WORK/099 exists)');
    return null;
  }
  const { runId } = await enqueueRun(
    { pool, redis, prefix: cfg.CUTTER_QUEUE_PREFIX },
    { target: 'icx-work', snapshotPath: DEMO_SNAPSHOT, mode: 'live', operator: cfg.CUTTER_OPERATOR, approvalWindowS: 3600 },
  );
  const paused = await followRun(pool, runId, { print: out, until: (v) => v.status === 'awaiting_approval' });
  if (paused.status !== 'awaiting_approval') {
    out(`   run ${runId}: ${paused.status} before the gate`);
    return 'FAILED';
  }
  out(`   paused at SG_1; plan ${paused.plan?.plan_sha256 ?? '?'}: signing SG_1 and EXEC and submitting them`);
  await sovereign.approve({ cfg, pool, redis }, runId);
  const view = await followRun(pool, runId, { print: out, until: () => false });
  out(`   live run ${runId}: ${view.status}, verdict ${view.verdict ?? 'none'}`);
  return view.verdict === 'PASS' ? runId : 'FAILED';
}

/** `cutter demo seed` and `cutter demo` (what `npm run demo` runs). */
export function registerDemoCommands(program: Command, ctx: () => CliContext): void {
  const demo = program.command('demo').description('the demo corpus');

  demo
    .command('seed')
    .description('load the fixed demo corpus (idempotent)')
    .action(async () => {
      const c = ctx();
      const seeded = await seedDemo(c.db(), c.cfg.CUTTER_OPERATOR, { sovereignDir: SOVEREIGN_DIR(), execRole: c.cfg.CUTTER_EXEC_ROLE });
      const [first, ...rest] = seedLines(seeded);
      out(`demo seed: ${first ?? ''}`);
      for (const line of rest) out(`  ${line}`);
    });

  demo
    .command('run', { isDefault: true })
    .description('migrate, seed, a dry run and then a live run of the demo snapshot with in-process workers (the quickstart)')
    .action(async () => {
      const c = ctx();
      out('1. migrate');
      for (const line of migrationLines(await migrate(c.cfg.DATABASE_URL, { execRole: c.cfg.CUTTER_EXEC_ROLE }), c.cfg)) out(`   ${line}`);
      out('2. seed the demo corpus');
      const seeded = await seedDemo(c.db(), c.cfg.CUTTER_OPERATOR, { sovereignDir: SOVEREIGN_DIR(), execRole: c.cfg.CUTTER_EXEC_ROLE });
      await registerDemoWorkTarget(c.db(), c.cfg.CUTTER_OPERATOR);
      for (const line of seedLines(seeded)) out(`   ${line}`);
      out('3. corpus summary');
      const rows = await corpusSummary(c.db());
      out(table(['corpus', 'state', 'units', 'versions'], rows.map((r) => [r.corpus, r.state, r.units, r.versions])));
      out(`total: ${rows.reduce((n, r) => n + r.units, 0)} units`);

      out('4. dry run of demo/icx-work.snapshot.ndjson against target icx-work');
      const sovereign = localSovereign(SOVEREIGN_DIR());
      const cfg = await demoConfig(c.cfg, sovereign.keysDir);
      for (const line of demoSettingLines(c.cfg, cfg)) out(`   ${line}`);
      const fleet = await startFleet({ cfg, log: createLogger({ level: 'warn' }) });
      const redis = createRedis(cfg.REDIS_URL);
      try {
        const { runId } = await enqueueRun(
          { pool: c.db(), redis, prefix: cfg.CUTTER_QUEUE_PREFIX },
          { target: 'icx-work', snapshotPath: DEMO_SNAPSHOT, mode: 'dry', operator: cfg.CUTTER_OPERATOR, approvalWindowS: 3600 },
        );
        const view = await followRun(c.db(), runId, { print: out, until: () => false });
        out(`   run ${runId}: ${view.status}, verdict ${view.verdict ?? 'none'}`);
        const live = await demoLiveRun({ cfg, pool: c.db(), redis, sovereign });
        out('');
        out((await getRun(c.db(), live ?? runId))?.report ?? '');
        process.exitCode = view.verdict === 'PASS' && live !== 'FAILED' ? 0 : 1;
      } finally {
        redis.disconnect();
        await fleet.close();
      }
    });
}
