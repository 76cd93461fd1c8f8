import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RedisClient } from '../../shared/redis.js';
import { pino } from 'pino';
import { inject } from 'vitest';
import { parseConfig, type Config } from '../../shared/config.js';
import { ensureDemoGpgKey } from '../../shared/demo/gpg-key.js';
import type { Phase, RunMode } from '../../shared/jobs/catalog.js';
import { createRedis } from '../../shared/redis.js';
import type { CorpusFingerprint } from '../../shared/jobs/results.js';
import { hasEnded } from '../../shared/runs/status.js';
import { runView, type RunView } from '../../shared/runs/view.js';
import { enqueueRun } from '../../producers/flow/enqueue.js';
import { startFleet, type Fleet } from '../../workers/fleet.js';
import type { PhaseResult } from '../../shared/jobs/results.js';
import type { FleetOptions, StandIns } from '../../workers/fleet.js';
import { fingerprintCorpusTables } from './corpus-tables.js';
import { createDemoDatabase, type TestDatabase } from './db.js';
import { waitFor } from './poll.js';
import { testQueuePrefix } from './prefix.js';
import { insertConsumedApprovals, makeKey, writeTrustedKeys, type TestKey } from './sovereign.js';

export const DEMO_SNAPSHOT = new URL('../../demo/icx-work.snapshot.ndjson', import.meta.url).pathname;

/** A database with the demo corpus and target, a GPG key, a queue prefix: everything a run needs. */
export interface RunEnv {
  db: TestDatabase;
  cfg: Config;
  env: Record<string, string>;
  redis: RedisClient;
  dir: string;
  /** A trusted sovereign key (not the operator's); more keys may be written into dir. */
  sovereign: { key: TestKey; dir: string };
  fleet?: Fleet;
  startFleet: (processors?: StandIns, phases?: Phase[]) => Promise<Fleet>;
  enqueue: (mode: RunMode, options?: { snapshot?: string; approvalWindowS?: number; target?: string }) => Promise<string>;
  waitForEnd: (runId: string, deadlineMs?: number) => Promise<RunView>;
  /** The corpus tables whole, every corpus: "nothing changed anywhere" (more than a run's own proof). */
  corpus: () => Promise<CorpusFingerprint[]>;
  close: () => Promise<void>;
}

/** What a stand-in for an opened gate returns: it arranged the approvals itself, so the gate's commit has nothing to consume. */
export const STAND_IN_GATE: PhaseResult<'approval-gate'> = { released: 'already', sg_1_keys: [], exec_keys: [], quorum: 1, decision_ids: [] };

/** Builds a run environment of its own (database, prefix, GNUPGHOME, backup dir); `options.env` adds variables, `options.fleet` fleet timings. */
export async function createRunEnv(label: string, options: { env?: Record<string, string>; fleet?: Pick<FleetOptions, 'notify'> } = {}): Promise<RunEnv> {
  const db = await createDemoDatabase(label, 'tester');
  const dir = mkdtempSync(join(tmpdir(), `cutter-${label}-`));
  const gnupgHome = join(dir, 'gnupg');
  const fpr = await ensureDemoGpgKey(gnupgHome);
  const sovereignKey = makeKey('sovereign-a');
  const sovereignDir = writeTrustedKeys(join(dir, 'sovereign-keys'), [sovereignKey]);
  const env = {
    // The workers, the board and the CLI connect as the application's role, never as a superuser.
    DATABASE_URL: db.appUrl,
    REDIS_URL: inject('redisUrl'),
    CUTTER_QUEUE_PREFIX: testQueuePrefix(label.replace(/[^a-z0-9]/gi, '').slice(0, 12) || 't'),
    BACKUP_GPG_FPR: fpr,
    GNUPGHOME: gnupgHome,
    BACKUP_DIR: join(dir, 'backups'),
    CUTTER_ALLOW_VOLATILE_REDIS: 'true',
    CUTTER_OPERATOR: 'tester',
    SOVEREIGN_KEYS: sovereignDir,
    LOG_LEVEL: 'silent',
    ...options.env,
  };
  mkdirSync(env.BACKUP_DIR, { recursive: true });
  const cfg = parseConfig(env);
  const redis = createRedis(cfg.REDIS_URL);
  const self: RunEnv = {
    db,
    cfg,
    env,
    redis,
    dir,
    sovereign: { key: sovereignKey, dir: sovereignDir },
    startFleet: async (processors, phases) => {
      await self.fleet?.close();
      self.fleet = await startFleet({ cfg, log: pino({ level: 'silent' }), ...options.fleet, ...(processors ? { processors } : {}), ...(phases ? { phases } : {}) });
      return self.fleet;
    },
    enqueue: async (mode, options = {}) => {
      const { runId } = await enqueueRun(
        { pool: db.pool, redis, prefix: cfg.CUTTER_QUEUE_PREFIX },
        { target: options.target ?? 'icx-work', snapshotPath: options.snapshot ?? DEMO_SNAPSHOT, mode, operator: 'tester', approvalWindowS: options.approvalWindowS ?? 3600 },
      );
      return runId;
    },
    waitForEnd: (runId, deadlineMs = 60_000) =>
      waitFor(`run ${runId} to end`, async () => {
        // Status and report in one read: a run seen ended must already carry its report.
        const row = await db.pool.query<{ status: string; report: string | null }>(
          'SELECT status, report FROM cutter_governance.run WHERE run_id = $1',
          [runId],
        );
        const seen = row.rows[0];
        if (!seen || !hasEnded(seen.status)) return undefined;
        if (!seen.report) throw new Error(`run ${runId} is ${seen.status} but has no report yet`);
        return (await runView(db.pool, runId)) ?? undefined;
      }, { deadlineMs, stepMs: 20 }),
    corpus: () => fingerprintCorpusTables(db.pool),
    close: async () => {
      await self.fleet?.close();
      redis.disconnect();
      await db.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return self;
}

/** Stands in for an opened gate: stores consumed, valid SG_1 + EXEC approvals and turns the kill switch on for the run. */
export async function armSwitch(env: RunEnv, runId: string): Promise<void> {
  await insertConsumedApprovals(env.db.pool, runId, env.sovereign.key);
  await env.db.pool.query(
    `UPDATE cutter_governance.execution_switch SET enabled = true, run_id = $1, expires_at = now() + interval '1 hour', changed_by = 'test'`,
    [runId],
  );
}
