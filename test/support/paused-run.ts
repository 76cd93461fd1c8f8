import type { Pool } from '../../shared/db/pool.js';
import { phaseResult } from '../../shared/jobs/results.js';
import { newRunId } from '../../shared/runs/store.js';

/** What an approval binds to: the run, its target and its frozen plan hash. */
export interface PausedRun {
  runId: string;
  target: string;
  planSha256: string;
}

/**
 * A live run awaiting approval as cutplan leaves it, on the demo target
 * icx-work: run row, change set (no items), completed cutplan phase.
 */
export async function insertPausedRun(pool: Pool): Promise<PausedRun> {
  const runId = newRunId();
  await pool.query(
    `INSERT INTO cutter_governance.run (run_id, target, corpus, mode, operator, approval_window_s, status)
     VALUES ($1, 'icx-work', 'ICX-WORK', 'live', 'test-operator', 3600, 'awaiting_approval')`,
    [runId],
  );
  return pauseAtGate(pool, runId);
}

/**
 * An existing live run of the demo target icx-work (enqueued, say, with no
 * workers serving its queues) brought to where cutplan leaves it: change set
 * (no items), completed cutplan phase, awaiting approval.
 */
export async function pauseAtGate(pool: Pool, runId: string): Promise<PausedRun> {
  const planSha256 = runId.slice(-6).padEnd(64, '0');
  await pool.query(`UPDATE cutter_governance.run SET status = 'awaiting_approval' WHERE run_id = $1`, [runId]);
  await pool.query(
    `INSERT INTO cutter_governance.cut_change_set (run_id, target, corpus, plan_sha256, unit_count, by_op, by_transition)
     VALUES ($1, 'icx-work', 'ICX-WORK', $2, 0, '{}', '{}')`,
    [runId, planSha256],
  );
  const result = { plan_sha256: planSha256, unit_count: 0, by_op: {}, by_transition: {} };
  await pool.query(`INSERT INTO cutter_governance.run_phase (run_id, phase, state, finished_at, summary) VALUES ($1, 'cutplan', 'completed', now(), $2)`, [
    runId,
    JSON.stringify(phaseResult('cutplan', result)),
  ]);
  return { runId, target: 'icx-work', planSha256 };
}
