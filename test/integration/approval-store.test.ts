import { describe, expect, it } from 'vitest';
import { storeDecision } from '../../shared/approval/store.js';
import { errorCode } from '../../shared/errors.js';
import { approvalDatabase, arrivedApproval } from '../support/approval-db.js';
import { insertPausedRun, type PausedRun } from '../support/paused-run.js';
import { makeKey } from '../support/sovereign.js';

/**
 * The approval store (store_approval, one round trip) under concurrency:
 * the kill switch is one row, so EXEC grants for two runs racing each other
 * leave it on for exactly one; and of two approvals of one run arriving
 * together, the one stored last reads both back, so the release is never
 * missed. Driven below the HTTP layer, with runs paused at SG_1 as cutplan
 * leaves them.
 */

const alice = makeKey('alice');
const env = approvalDatabase('approval-store', [alice]);

const pausedRun = () => insertPausedRun(env.db.pool);

/** Validates (as the endpoint does) and stores one approval. */
async function submit(run: PausedRun, gate: 'SG_1' | 'EXEC') {
  return storeDecision(env.db.pool, await arrivedApproval(env, run, gate, alice));
}

async function switchRun(): Promise<string | null> {
  const { rows } = await env.db.pool.query<{ run_id: string | null }>('SELECT run_id FROM cutter_governance.execution_switch WHERE enabled');
  return rows[0]?.run_id ?? null;
}

async function decisions(runId: string): Promise<number> {
  const { rows } = await env.db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM cutter_governance.review_decision WHERE run_id = $1', [runId]);
  return rows[0]?.n ?? -1;
}

describe('the approval store', () => {
  it('refuses an EXEC grant while another live run holds the switch, and takes it once that run has ended', async () => {
    await env.db.pool.query(`UPDATE cutter_governance.execution_switch SET enabled = false, run_id = NULL, expires_at = NULL, changed_by = 'test'`);
    const holder = await pausedRun();
    const other = await pausedRun();
    await submit(holder, 'EXEC');

    const refused = await submit(other, 'EXEC').catch((err: unknown) => err as Error);
    expect(errorCode(refused)).toBe('APPROVAL_SWITCH_BUSY');
    expect((refused as Error).message).toContain(holder.runId);
    expect(await decisions(other.runId)).toBe(0);
    expect(await switchRun()).toBe(holder.runId);

    // A grant of a run that has ended holds nothing.
    await env.db.pool.query(`UPDATE cutter_governance.run SET status = 'succeeded' WHERE run_id = $1`, [holder.runId]);
    await submit(other, 'EXEC');
    expect(await switchRun()).toBe(other.runId);
  });

  it('of EXEC grants for two runs submitted at the same moment, stores exactly one and leaves the switch on for that run', async () => {
    for (let trial = 0; trial < 10; trial += 1) {
      await env.db.pool.query(`UPDATE cutter_governance.execution_switch SET enabled = false, run_id = NULL, expires_at = NULL, changed_by = 'test'`);
      const runs = [await pausedRun(), await pausedRun()];
      const outcomes = await Promise.allSettled(runs.map((r) => submit(r, 'EXEC')));
      const accepted = runs.filter((_, i) => outcomes[i]?.status === 'fulfilled');
      const refusals = outcomes.flatMap((o) => (o.status === 'rejected' ? [errorCode(o.reason)] : []));
      expect(accepted).toHaveLength(1);
      expect(refusals).toEqual(['APPROVAL_SWITCH_BUSY']);
      expect(await switchRun()).toBe(accepted[0]?.runId);
      for (const r of runs) expect(await decisions(r.runId)).toBe(r === accepted[0] ? 1 : 0);
    }
  });
});
