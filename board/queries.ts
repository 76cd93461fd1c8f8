import type { Pool } from '../shared/db/pool.js';

/** One row of the /runs list. */
export interface RunListRow {
  run_id: string;
  target: string;
  mode: string;
  status: string;
  phase: string | null;
  verdict: string | null;
  created_at: Date;
  finished_at: Date | null;
}

/** The most recent runs, newest first, optionally of one status. */
export async function listRuns(pool: Pool, args: { status?: string; limit: number }): Promise<RunListRow[]> {
  const { rows } = await pool.query<RunListRow>(
    `SELECT run_id, target, mode, status, phase, verdict, created_at, finished_at
       FROM cutter_governance.run
      WHERE ($1::text IS NULL OR status = $1)
      ORDER BY created_at DESC, run_id DESC
      LIMIT $2`,
    [args.status ?? null, args.limit],
  );
  return rows;
}

