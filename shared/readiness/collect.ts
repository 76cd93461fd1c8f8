import type { RedisClient } from '../redis.js';
import type { Config } from '../config.js';
import { splitDatabaseUrl, type Pool } from '../db/pool.js';
import { CutterError } from '../errors.js';
import { redactUrl } from '../logger.js';
import { statSnapshot } from '../snapshot/source.js';
import { checkApprovalContract } from './approvals.js';
import { checkBackupRunner } from './backup.js';
import { compareWithBaseline, loadBaseline, measureG0, type G0Item } from './baseline.js';
import { checkCommandPackage, COMMAND_PACKAGE, type FlowBuilder } from './command-package.js';
import { compareDbState, takeDbSnapshot, type DbSnapshot } from './db-state.js';
import { checkGrantProbe } from './grants.js';
import { checkTargetIntake } from './intake.js';
import { checkKillSwitch } from './kill-switch.js';
import { checkRedisDurability, REDIS_DURABILITY } from './redis-durability.js';
import { readOnly } from './read-only.js';
import { loadRunContext, type RunContext } from './run-context.js';
import { messageOf, unchecked, type PackageResult, type Readiness, type ReadinessScope } from './types.js';
import { decideVerdict } from './verdict.js';
import { checkDeployedVersion } from './version.js';

/**
 * `cutter readiness`: fingerprint everything, run every check read-only,
 * fingerprint everything again, and say what is missing and whose move it
 * is. Nothing here writes: Postgres only sees READ ONLY transactions that
 * are rolled back, Redis only CLIENT LIST / CONFIG GET / PING, and no file
 * is created (the backup and gpg checks are the no-write variants).
 */

export interface ReadinessDeps {
  cfg: Config;
  pool: Pool;
  redis: RedisClient;
  buildFlow: FlowBuilder;
}

export interface ReadinessRequest {
  target?: string | undefined;
  runId?: string | undefined;
  snapshot?: string | undefined;
  /** A recorded G0 baseline to compare the database with (`cutter baseline record`). */
  baseline?: string | undefined;
}

function where(cfg: Config): { database: string; redis: string } {
  const db = new URL(cfg.DATABASE_URL);
  return { database: `${splitDatabaseUrl(cfg.DATABASE_URL).database} on ${db.hostname}:${db.port || '5432'}`, redis: redactUrl(cfg.REDIS_URL) };
}

/** PING with a deadline: a Redis that does not answer must not hang the report. */
async function redisProblem(redis: RedisClient): Promise<string | null> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve('no answer to PING within 10 s'), 10_000);
  });
  try {
    return await Promise.race([redis.ping().then(() => null, (err: unknown) => messageOf(err)), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** The readiness report. Throws only for bad input (unknown run, missing snapshot file); everything else is in the report. */
export async function collectReadiness(deps: ReadinessDeps, req: ReadinessRequest): Promise<Readiness> {
  const { cfg, pool, redis } = deps;
  const startedUtc = new Date().toISOString();
  const place = where(cfg);
  const scope: ReadinessScope = {
    target: req.target ?? null,
    corpus: null,
    run_id: req.runId ?? null,
    run_status: null,
    plan_sha256: null,
    snapshot: req.snapshot ?? null,
    operator: cfg.CUTTER_OPERATOR,
    database: place.database,
    redis: place.redis,
    queue_prefix: cfg.CUTTER_QUEUE_PREFIX,
  };
  if (req.snapshot) await statSnapshot(req.snapshot);
  // An unknown name is bad input, found before anything is checked.
  const recorded = req.baseline === undefined ? null : await loadBaseline(pool, req.baseline);

  let before: DbSnapshot;
  let run: RunContext | null = null;
  try {
    before = await takeDbSnapshot(pool);
    if (req.runId) run = await loadRunContext(pool, req.runId);
  } catch (err) {
    const failure = `database ${place.database} could not be read: ${messageOf(err)}; nothing else was checked`;
    return decideVerdict({ startedUtc, scope, dbState: [], baseline: null, packages: [], criteria: [], failures: [failure] });
  }
  if (req.runId && !run) throw new CutterError('RUN_UNKNOWN', `no run ${req.runId}: see cutter status, or leave out --run`, { kind: 'bad_input' });
  if (run && req.target && req.target !== run.run.target) {
    throw new CutterError('READINESS_TARGET_MISMATCH', `run ${run.run.run_id} is for target ${run.run.target}, not ${req.target}`, { kind: 'bad_input' });
  }
  const targetName = req.target ?? run?.run.target ?? null;
  if (run) {
    Object.assign(scope, { target: targetName, run_status: run.run.status, plan_sha256: run.plan?.plan_sha256 ?? null, operator: run.run.operator });
  }

  const redisDown = await redisProblem(redis);
  const redisFailure = redisDown ? `Redis at ${place.redis} did not answer: ${redisDown}` : null;
  const backup = await checkBackupRunner(cfg, pool);
  const grants = await checkGrantProbe(cfg, pool);
  const intake = await checkTargetIntake(pool, { targetName, snapshot: req.snapshot ?? null, run, backupOk: backup.runnable === 'YES' });
  scope.corpus = intake.target?.corpus ?? run?.run.corpus ?? null;
  const command = redisFailure ? unchecked(COMMAND_PACKAGE, redisFailure) : await checkCommandPackage(cfg, redis, deps.buildFlow, targetName);
  const killSwitch = await checkKillSwitch(cfg, pool, run);
  const approvals = await checkApprovalContract({ cfg, pool, targetName, run, switchOnForRun: killSwitch.state?.onForRun ?? false });
  const durability = redisFailure ? unchecked(REDIS_DURABILITY, redisFailure) : await checkRedisDurability(cfg, redis);
  const version = await checkDeployedVersion();
  const results: PackageResult[] = [backup, grants, intake.result, command, approvals, killSwitch.result, durability, version];

  const failures = [...new Set(results.map((r) => r.failure).filter((f): f is string => f !== null))];
  let after: DbSnapshot | null = null;
  let g0Now: G0Item[] | null = null;
  try {
    after = await takeDbSnapshot(pool);
    if (recorded) g0Now = await readOnly(pool, measureG0);
  } catch (err) {
    failures.push(`the second fingerprint of database ${place.database} could not be taken: ${messageOf(err)}`);
  }
  const lines = recorded ? compareWithBaseline(recorded.items, g0Now) : [];
  return decideVerdict({
    startedUtc,
    scope,
    dbState: compareDbState(before, after),
    baseline: recorded ? { name: recorded.name, recorded_utc: recorded.recorded_utc, recorded_by: recorded.recorded_by, lines, holds: lines.every((l) => l.equal) } : null,
    packages: results,
    criteria: intake.criteria,
    failures,
  });
}
