import { describe, expect, it } from 'vitest';
import { gateReadsFromClaim, loadGateRun } from '../../shared/approval/binding.js';
import { storeDecision } from '../../shared/approval/store.js';
import type { PoolClient } from '../../shared/db/pool.js';
import { claimPhase } from '../../shared/runs/store.js';
import { approvalDatabase, arrivedApproval } from '../support/approval-db.js';
import { insertPausedRun, type PausedRun } from '../support/paused-run.js';
import { waitFor } from '../support/poll.js';
import { makeKey } from '../support/sovereign.js';

/**
 * The approval gate reads its run's approvals in the statement that claims
 * its phase (migration 015). An approval whose store held the run's lock
 * while the claim waited for it has committed before the claim goes on, and
 * the gate must count it: otherwise a run whose last approval was accepted
 * (201) at the window's last moment would end expired. The control shows the
 * hazard is real: a plain sub-select in the claiming statement, whose
 * snapshot predates the wait, misses the same approval.
 */

const alice = makeKey('alice');
const env = approvalDatabase('gate-claim-reads', [alice]);

const pausedRun = () => insertPausedRun(env.db.pool);

/** Stores an SG_1 approval inside an open transaction on client: the run stays locked until the caller commits. */
async function storeUncommitted(client: PoolClient, run: PausedRun): Promise<number> {
  const valid = await arrivedApproval(env, run, 'SG_1', alice);
  await client.query('BEGIN');
  return (await storeDecision(client, valid)).decisionId;
}

/** Waits (bounded) until a statement containing marker waits for a lock in this database. */
async function untilWaiting(marker: string): Promise<void> {
  await waitFor(
    `a statement with ${marker} to wait for a lock`,
    async () => {
      const { rowCount } = await env.db.pool.query(
        `SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%' || $1 || '%'`,
        [marker],
      );
      return rowCount ? true : undefined;
    },
    { deadlineMs: 10_000, stepMs: 10 },
  );
}

describe("the gate's claim", () => {
  it('reads the run and its approvals, including one committed while the claim waited for the run lock', async () => {
    const run = await pausedRun();
    const holder = await env.db.pool.connect();
    try {
      const decisionId = await storeUncommitted(holder, run);
      const claiming = claimPhase(env.db.pool, run.runId, 'approval-gate');
      await untilWaiting('gate_reads');
      await holder.query('COMMIT');
      const claimed = await claiming;
      expect(claimed?.started).toBe(true);
      expect(claimed?.run.status).toBe('running');
      const reads = gateReadsFromClaim(claimed!.run, claimed!.gateReads);
      expect(reads.unconsumed.map((d) => d.id)).toEqual([decisionId]);
      expect(reads.unconsumed[0]?.received_utc).toBeInstanceOf(Date);
      // The same run as the approval rules read it on their own.
      expect(reads.run).toEqual({ ...(await loadGateRun(env.db.pool, run.runId)), status: 'running' });
    } finally {
      holder.release();
    }
  });

  it('control: a plain sub-select in the claiming statement misses that approval', async () => {
    const run = await pausedRun();
    const holder = await env.db.pool.connect();
    try {
      await storeUncommitted(holder, run);
      const naive = env.db.pool.query<{ seen: number }>(
        `WITH claimed AS (
           UPDATE cutter_governance.run SET status = 'running' WHERE run_id = $1 RETURNING run_id
         )
         SELECT (SELECT count(*)::int FROM cutter_governance.review_decision d WHERE d.run_id = c.run_id) AS seen /* naive_read */
           FROM claimed c`,
        [run.runId],
      );
      await untilWaiting('naive_read');
      await holder.query('COMMIT');
      expect((await naive).rows[0]?.seen).toBe(0);
      const { rows } = await env.db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM cutter_governance.review_decision WHERE run_id = $1', [run.runId]);
      expect(rows[0]?.n).toBe(1);
    } finally {
      holder.release();
    }
  });

  it('reads nothing more for other phases', async () => {
    const run = await pausedRun();
    const claimed = await claimPhase(env.db.pool, run.runId, 'backup');
    expect(claimed?.started).toBe(true);
    expect(claimed?.gateReads).toBeNull();
  });
});
