import { appendAudit } from '../audit/append.js';
import { isPgError } from '../db/errors.js';
import type { Pool, PoolClient } from '../db/pool.js';
import { CutterError } from '../errors.js';
import { withExecRole } from '../grants/exec-role.js';
import type { PhaseResult } from '../jobs/results.js';
import type { Logger } from '../logger.js';
import { recomputePlanSha256 } from '../plan/hash.js';
import type { SovereignPolicy } from '../approval/recheck.js';
import { loadExecutionAuthority } from './authority.js';
import { appliedAt, disarmSwitchForRun, lockRunExecution, markRehearsed } from './ledger.js';

/** What apply_plan writes, as it reports it. */
interface ApplyCounts {
  units_created: number;
  units_updated: number;
  versions_written: number;
  log_rows: number;
}

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
    // The apply, its proof, the ledger, the switch and the audit row: one call, as the exec role (shared/db/functions/apply_plan.sql).
    const counts = await withExecRole(client, options.execRole, () => applyPlan(client, runId, actor));
    await options.beforeCommit?.();
    await client.query('COMMIT');
    return { mode: 'live', applied: true, plan_sha256: authority.planSha256, ...counts };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    if (err instanceof Rehearsed) {
      await markRehearsed(pool, runId);
      await appendAudit(pool, { actor, kind: 'execute.rehearsed', runId, detail: { ...err.counts } });
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

/** apply_plan's refusals, as execute names them; CX000 carries a dry run's rehearsal out. */
const APPLY_ERRORS: Record<string, (runId: string, detail: string) => CutterError> = {
  CX001: (runId) => new CutterError('RUN_NOT_RUNNING', `run ${runId} is not running at execute: nothing was applied`),
  CX002: (runId) => new CutterError('EXECUTE_ALREADY_APPLIED', `run ${runId} was already applied (execution_ledger): nothing was applied again`),
  CX003: (runId) => new CutterError('KILL_SWITCH_OFF', `the kill switch is off for run ${runId}: an EXEC grant for this run is needed; nothing was applied`),
  CX004: (_runId, keys) => new CutterError('EXECUTE_DRIFT', `the corpus changed since the plan was made; drifted keys: ${keys}; nothing was applied`),
  CX005: (_runId, keys) => new CutterError('EXECUTE_POSTCONDITION', `postconditions failed for ${keys}; nothing was applied`),
  CX006: (runId) => new CutterError('PLAN_TAMPERED', `run ${runId}: the plan's items changed under the apply; nothing was applied`),
  CX007: (runId) => new CutterError('EXECUTE_NO_BACKUP', `run ${runId} has no completed, verified backup: execute applies nothing without one`),
  CX008: (runId) => new CutterError('EXECUTE_NOT_A_REVERT', `run ${runId} is no revert, but its plan takes a transition only a revert may take: nothing was applied`),
};

/** Calls apply_plan inside the caller's transaction (as the exec role); a dry run comes back as Rehearsed. */
async function applyPlan(client: PoolClient, runId: string, actor: string): Promise<ApplyCounts> {
  try {
    const { rows } = await client.query<{ counts: ApplyCounts }>('SELECT cutter_governance.apply_plan($1, $2) AS counts', [runId, actor]);
    const counts = rows[0]?.counts;
    if (!counts) throw new Error('apply_plan returned nothing');
    return counts;
  } catch (err) {
    const detail = (err as { detail?: string }).detail ?? '';
    if (isPgError(err, 'CX000')) throw new Rehearsed(JSON.parse(detail) as ApplyCounts);
    const code = (err as { code?: string }).code ?? '';
    const known = APPLY_ERRORS[code];
    throw known ? known(runId, detail) : err;
  }
}
