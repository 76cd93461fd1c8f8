import { appendAudit } from '../audit/append.js';
import type { Pool, PoolClient } from '../db/pool.js';
import { CutterError } from '../errors.js';
import { withExecRole } from '../grants/exec-role.js';
import type { PhaseResult } from '../jobs/results.js';
import type { Logger } from '../logger.js';
import { recomputePlanSha256 } from '../plan/hash.js';
import type { SovereignPolicy } from '../approval/recheck.js';
import { applyPlan, type ApplyCounts } from './apply.js';
import { loadExecutionAuthority } from './authority.js';
import { appliedAt, disarmAsExecRole, disarmSwitchForRun, lockRunExecution, markRehearsed, recordApplied, switchOnFor } from './ledger.js';

/** Rolls a dry run's rehearsal back: a thrown marker carries the result out of the transaction. */
class Rehearsed extends Error {
  constructor(readonly counts: ApplyCounts) {
    super('rehearsal rolled back');
  }
}

export interface ExecuteOptions {
  execRole: string;
  sovereign: SovereignPolicy;
  log: Logger;
  /** Runs with the plan applied and the transaction still open (the crash tests' moment). */
  beforeCommit?: () => Promise<void>;
}

export type ExecuteOutcome = PhaseResult<'execute'>;

/**
 * Applies a run's plan at most once, atomically, under the exec role.
 * Authority comes from Postgres alone; the ledger row (primary key = run id),
 * written in the same transaction as the change, makes a second delivery a
 * no-op. A dry run does all of it and rolls back.
 */
export async function executeRun(pool: Pool, run: { run_id: string; operator: string; mode: 'dry' | 'live' }, options: ExecuteOptions): Promise<ExecuteOutcome> {
  const runId = run.run_id;
  const actor = `cutter:${run.operator}`;
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    // A dead worker's backend stops its statement promptly instead of running on (FIELD-NOTES).
    await client.query(`SET client_connection_check_interval = '250ms'`).catch(() => undefined);
    await client.query('BEGIN');
    await lockRunExecution(client, runId);
    const done = await appliedAt(client, runId);
    if (done) {
      await client.query('ROLLBACK');
      return { mode: run.mode, already_applied: true, applied_at: done.toISOString() };
    }
    const authority = await loadExecutionAuthority(client, runId, recomputePlanSha256, options.sovereign);
    const live = authority.mode === 'live';
    const counts = await withExecRole(client, options.execRole, () =>
      applyUnderExecRole(client, { runId, corpus: authority.corpus, actor, live, planSha256: authority.planSha256, unitCount: authority.scope.unitCount }),
    );
    // Audited in the same transaction, as the application's login (the exec role may not read the chain).
    await appendAudit(client, { actor, kind: live ? 'execute.applied' : 'execute.rehearsed', runId, detail: { ...counts, plan_sha256: authority.planSha256 } });
    if (!live) throw new Rehearsed(counts);
    await options.beforeCommit?.();
    await client.query('COMMIT');
    return { mode: 'live', applied: true, plan_sha256: authority.planSha256, ...counts };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    if (err instanceof Rehearsed) {
      await markRehearsed(pool, runId);
      return { mode: 'dry', rehearsed: true, rolled_back: true, ...err.counts };
    }
    if (run.mode === 'live') await afterFailedApply(pool, runId, actor, err, options.log);
    // A connection that failed mid-transaction is not returned to the pool.
    broken = err instanceof CutterError ? undefined : (err as Error);
    throw err;
  } finally {
    client.release(broken);
  }
}

/**
 * Whatever happened, the switch goes off (DESIGN §2) and the failure is
 * audited. If Postgres is unreachable this fails too; the switch then still
 * ends at its expiry.
 */
async function afterFailedApply(pool: Pool, runId: string, actor: string, err: unknown, log: Logger): Promise<void> {
  try {
    await disarmSwitchForRun(pool, runId, `${actor}:execute-failed`);
    await appendAudit(pool, {
      actor,
      kind: 'execute.failed',
      runId,
      detail: { code: err instanceof CutterError ? err.code : 'INTERNAL', message: (err as Error).message },
    });
  } catch (disarmError) {
    log.error({ err: disarmError, run_id: runId }, 'could not turn the kill switch off after a failed execute');
  }
}

/** The body of the transaction, run as the exec role: switch, drift, apply, check, ledger. */
async function applyUnderExecRole(
  client: PoolClient,
  args: { runId: string; corpus: string; actor: string; live: boolean; planSha256: string; unitCount: number },
): Promise<ApplyCounts> {
  const { runId, corpus, actor } = args;
  if (args.live && !(await switchOnFor(client, runId))) {
    throw new CutterError('KILL_SWITCH_OFF', `the kill switch is off for run ${runId}: an EXEC grant for this run is needed; nothing was applied`);
  }
  // Preconditions checked under the row locks, the apply, and the proof of every postcondition, in one
  // statement; it throws EXECUTE_DRIFT or EXECUTE_POSTCONDITION and the caller rolls back (./apply.ts).
  const counts = await applyPlan(client, { runId, corpus, actor, unitCount: args.unitCount });
  await recordApplied(client, args);
  if (args.live) await disarmAsExecRole(client, actor);
  return counts;
}
