import type { Pool, PoolClient } from '../db/pool.js';

/**
 * The statements around execute's apply (shared/db/functions/apply_plan.sql
 * writes the ledger, the change set's status and the switch with the change
 * itself): the ledger read, execute's lock, a rehearsal's status, and turning
 * the switch off when a run ends.
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

/** A dry run's change set, rehearsed and rolled back. */
export async function markRehearsed(db: Pool | PoolClient, runId: string): Promise<void> {
  await db.query(`UPDATE cutter_governance.cut_change_set SET status = 'rehearsed' WHERE run_id = $1 AND status = 'planned'`, [runId]);
}

/**
 * Turns the kill switch off if it is on for this run (and only then: another
 * run's grant is not this run's to revoke), through the function that owns
 * the switch. Used when a run ends any way.
 */
export async function disarmSwitchForRun(db: Pool | PoolClient, runId: string, actor: string): Promise<void> {
  await db.query('SELECT cutter_governance.disarm_execution($1, $2)', [runId, actor]);
}
