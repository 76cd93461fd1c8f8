import type { Pool, PoolClient } from '../db/pool.js';

/**
 * The units a revert left out with --skip-drifted (cutter_governance.revert_skip),
 * written by discover with the input it staged, so the plan and the units it
 * did not touch are recorded together.
 */

type Db = Pool | PoolClient;

/** A unit changed after the run a revert reverts (shared/revert/). */
export interface DriftedUnit {
  key: string;
  /** The run that changed it last; null when no run recorded the change (or the unit is gone). */
  changed_by_run: string | null;
}

/** Records (replacing what an earlier delivery recorded) the units a revert leaves out. */
export async function recordSkipped(db: Db, runId: string, drifted: readonly DriftedUnit[]): Promise<void> {
  await db.query('DELETE FROM cutter_governance.revert_skip WHERE run_id = $1', [runId]);
  if (drifted.length === 0) return;
  await db.query(
    `INSERT INTO cutter_governance.revert_skip (run_id, key, changed_by_run)
     SELECT $1, u.key, u.changed_by_run FROM unnest($2::text[], $3::text[]) AS u (key, changed_by_run)`,
    [runId, drifted.map((d) => d.key), drifted.map((d) => d.changed_by_run)],
  );
}

/** A revert's skipped units: how many, and the first `limit` in byte order of key. */
export async function listSkipped(db: Db, runId: string, limit: number): Promise<{ count: number; units: DriftedUnit[] }> {
  const { rows } = await db.query<DriftedUnit & { count: number }>(
    `SELECT key, changed_by_run, count(*) OVER ()::int AS count
       FROM cutter_governance.revert_skip WHERE run_id = $1 ORDER BY key COLLATE "C" LIMIT $2`,
    [runId, limit],
  );
  return { count: rows[0]?.count ?? 0, units: rows.map((r) => ({ key: r.key, changed_by_run: r.changed_by_run })) };
}
