import type { Pool, PoolClient } from '../db/pool.js';

/**
 * The statements around execute's apply that record what happened to a
 * change set: the exactly-once ledger (primary key = run id, written in the
 * apply's own transaction), the change set's status, and the kill switch.
 */

/** The ledger row of a run, if its plan was applied: read first, under the run's execute lock. */
export const LEDGER_ENTRY_SQL = 'SELECT applied_at FROM cutter_governance.execution_ledger WHERE run_id = $1';

/** When run's plan was applied, or null: a redelivered execute finds it and does nothing. */
export async function appliedAt(client: PoolClient, runId: string): Promise<Date | null> {
  const { rows } = await client.query<{ applied_at: Date }>(LEDGER_ENTRY_SQL, [runId]);
  return rows[0]?.applied_at ?? null;
}

/** Serialises two deliveries of one run's execute: the second waits, then finds the ledger row. */
export async function lockRunExecution(client: PoolClient, runId: string): Promise<void> {
  await client.query(`SELECT pg_advisory_xact_lock(hashtext('cutter.execute'), hashtext($1))`, [runId]);
}

/** The ledger row and the change set marked applied, inside the apply's transaction. */
export async function recordApplied(client: PoolClient, args: { runId: string; planSha256: string; unitCount: number }): Promise<void> {
  await client.query('INSERT INTO cutter_governance.execution_ledger (run_id, plan_sha256, unit_count) VALUES ($1, $2, $3)', [
    args.runId,
    args.planSha256,
    args.unitCount,
  ]);
  await client.query(`UPDATE cutter_governance.cut_change_set SET status = 'applied', applied_at = now() WHERE run_id = $1`, [args.runId]);
}

/** A dry run's change set, rehearsed and rolled back. */
export async function markRehearsed(db: Pool | PoolClient, runId: string): Promise<void> {
  await db.query(`UPDATE cutter_governance.cut_change_set SET status = 'rehearsed' WHERE run_id = $1 AND status = 'planned'`, [runId]);
}

/** Whether the kill switch is on for this run, as the exec role sees it. */
export async function switchOnFor(client: PoolClient, runId: string): Promise<boolean> {
  const { rows } = await client.query<{ on: boolean }>('SELECT cutter_governance.execution_enabled($1) AS on', [runId]);
  return rows[0]?.on === true;
}

/** Turns the switch off through the one function the exec role may call for it (inside the apply's transaction). */
export async function disarmAsExecRole(client: PoolClient, actor: string): Promise<void> {
  await client.query('SELECT cutter_governance.disarm_execution($1)', [actor]);
}

/**
 * Turns the kill switch off if it is on for this run (and only then: another
 * run's grant is not this run's to revoke). Used when a run ends any way.
 */
export async function disarmSwitchForRun(db: Pool | PoolClient, runId: string, actor: string): Promise<void> {
  await db.query(
    `UPDATE cutter_governance.execution_switch
        SET enabled = false, run_id = NULL, expires_at = NULL, changed_at = now(), changed_by = $2
      WHERE run_id = $1`,
    [runId, actor],
  );
}
