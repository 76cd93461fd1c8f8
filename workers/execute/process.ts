import { appendAudit } from '../../shared/audit/append.js';
import type { PoolClient } from '../../shared/db/pool.js';
import { CutterError } from '../../shared/errors.js';
import { faultPoint } from '../../shared/faults.js';
import { applyPlan, type ApplyCounts } from '../../shared/execute/apply.js';
import { loadExecutionAuthority } from '../../shared/execute/authority.js';
import { withExecRole } from '../../shared/grants/exec-role.js';
import { recomputePlanSha256 } from '../../shared/plan/hash.js';
import type { PhaseProcessor } from '../context.js';

/** Rolls a dry run's rehearsal back: a thrown marker carries the result out of the transaction. */
class Rehearsed extends Error {
  constructor(readonly counts: ApplyCounts) {
    super('rehearsal rolled back');
  }
}

/**
 * Applies the plan at most once, atomically, under the exec role. Authority
 * comes from Postgres alone; the ledger row (primary key = run id), written in
 * the same transaction as the change, makes a second delivery a no-op.
 * Dry runs do all of it and roll back.
 */
export const processExecute: PhaseProcessor = async ({ run }, deps) => {
  const runId = run.run_id;
  const actor = `cutter:${run.operator}`;
  const client = await deps.pool.connect();
  let broken: Error | undefined;
  try {
    // A dead worker's backend stops its statement promptly instead of running on (FIELD-NOTES).
    await client.query(`SET client_connection_check_interval = '250ms'`).catch(() => undefined);
    await client.query('BEGIN');
    await client.query(`SELECT pg_advisory_xact_lock(hashtext('cutter.execute'), hashtext($1))`, [runId]);
    const done = deps.cfg.CUTTER_TEST_DISABLE_LEDGER
      ? { rows: [] } // the chaos suite's negative control only
      : await client.query<{ applied_at: Date }>('SELECT applied_at FROM cutter_governance.execution_ledger WHERE run_id = $1', [runId]);
    if (done.rows[0]) {
      await client.query('ROLLBACK');
      return { mode: run.mode, already_applied: true, applied_at: done.rows[0].applied_at.toISOString() };
    }
    const authority = await loadExecutionAuthority(client, runId, recomputePlanSha256, {
      keysSource: deps.cfg.SOVEREIGN_KEYS,
      quorum: deps.cfg.SOVEREIGN_QUORUM,
    });
    const counts = await withExecRole(client, deps.cfg.CUTTER_EXEC_ROLE, () =>
      applyUnderExecRole(client, { runId, corpus: authority.corpus, actor, live: authority.mode === 'live', planSha256: authority.planSha256, unitCount: authority.scope.unitCount }),
    );
    // Audited in the same transaction, as the application's login (the exec role may not read the chain).
    await appendAudit(client, {
      actor,
      kind: authority.mode === 'live' ? 'execute.applied' : 'execute.rehearsed',
      runId,
      detail: { ...counts, plan_sha256: authority.planSha256 },
    });
    if (authority.mode === 'dry') throw new Rehearsed(counts);
    await faultPoint(deps.cfg, 'execute.middle');
    await client.query('COMMIT');
    return { mode: 'live', applied: true, plan_sha256: authority.planSha256, ...counts };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    if (err instanceof Rehearsed) {
      await deps.pool.query(`UPDATE cutter_governance.cut_change_set SET status = 'rehearsed' WHERE run_id = $1 AND status = 'planned'`, [runId]);
      return { mode: 'dry', rehearsed: true, rolled_back: true, ...err.counts };
    }
    if (run.mode === 'live') {
      // Whatever happened, the switch goes off (DESIGN §2). If Postgres is
      // unreachable this fails too; the switch then still ends at its expiry.
      try {
        await deps.pool.query('SELECT cutter_governance.disarm_execution($1)', [`${actor}:execute-failed`]);
        await appendAudit(deps.pool, {
          actor,
          kind: 'execute.failed',
          runId,
          detail: { code: err instanceof CutterError ? err.code : 'INTERNAL', message: (err as Error).message },
        });
      } catch (disarmError) {
        deps.log.error({ err: disarmError, run_id: runId }, 'could not turn the kill switch off after a failed execute');
      }
    }
    // A connection that failed mid-transaction is not returned to the pool.
    broken = err instanceof CutterError ? undefined : (err as Error);
    throw err;
  } finally {
    client.release(broken);
  }
};

/** The body of the transaction, run as the exec role: switch, drift, apply, check, ledger. */
async function applyUnderExecRole(
  client: PoolClient,
  args: { runId: string; corpus: string; actor: string; live: boolean; planSha256: string; unitCount: number },
): Promise<ApplyCounts> {
  const { runId, corpus, actor } = args;
  if (args.live) {
    const { rows } = await client.query<{ on: boolean }>('SELECT cutter_governance.execution_enabled($1) AS on', [runId]);
    if (!rows[0]?.on) {
      throw new CutterError('KILL_SWITCH_OFF', `the kill switch is off for run ${runId}: an EXEC grant for this run is needed; nothing was applied`);
    }
  }
  // Preconditions checked under the row locks, the apply, and the proof of every postcondition, in one
  // statement; it throws EXECUTE_DRIFT or EXECUTE_POSTCONDITION and the caller rolls back (shared/execute/apply.ts).
  const counts = await applyPlan(client, { runId, corpus, actor, unitCount: args.unitCount });
  await client.query(
    'INSERT INTO cutter_governance.execution_ledger (run_id, plan_sha256, unit_count) VALUES ($1, $2, $3)',
    [runId, args.planSha256, args.unitCount],
  );
  await client.query(
    `UPDATE cutter_governance.cut_change_set SET status = 'applied', applied_at = now() WHERE run_id = $1`,
    [runId],
  );
  if (args.live) await client.query('SELECT cutter_governance.disarm_execution($1)', [actor]);
  return counts;
}
