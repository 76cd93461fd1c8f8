import { describe, expect, it } from 'vitest';
import { gateReadsFromClaim, type GateReads } from '../../shared/approval/binding.js';
import { decideGate, GATE_OPENED_SQL, openIfApproved, type GateDeps } from '../../shared/approval/gate.js';
import { storeDecision } from '../../shared/approval/store.js';
import { claimPhase, peekGate } from '../../shared/runs/store.js';
import { approvalDatabase, arrivedApproval } from '../support/approval-db.js';
import { insertPausedRun, type PausedRun } from '../support/paused-run.js';
import { makeKey, type TestKey } from '../support/sovereign.js';

/**
 * The gate's opening (migration 016). The runner only reads the run and its
 * approvals (peekGate); when they are complete, one commit claims the phase,
 * consumes exactly those approvals, audits it and records the phase
 * completed. A read that went stale before that commit (approvals consumed
 * by a twin, the run ended) opens nothing and leaves the decision to a
 * claim under the run's lock, as before.
 */

const alice = makeKey('alice');
const bob = makeKey('bob');
const env = approvalDatabase('gate-opening', [alice, bob]);

const gate = (): GateDeps => ({ pool: env.db.pool, keys: env.keys, quorum: 1, now: new Date() });

/** A paused run with approvals by `by` stored as the endpoint stores them. */
async function approvedRun(by: [TestKey, 'SG_1' | 'EXEC'][]): Promise<PausedRun & { ids: number[] }> {
  await env.db.pool.query(`SELECT cutter_governance.disarm_execution('test')`);
  const run = await insertPausedRun(env.db.pool);
  const ids: number[] = [];
  for (const [key, g] of by) ids.push(await store(run, key, g));
  return { ...run, ids };
}

async function store(run: PausedRun, key: TestKey, g: 'SG_1' | 'EXEC'): Promise<number> {
  return (await storeDecision(env.db.pool, await arrivedApproval(env, run, g, key))).decisionId;
}

/** The runner's read: the run and its approvals, nothing claimed. */
async function peek(runId: string): Promise<{ reads: GateReads; readAt: Date | undefined }> {
  const peeked = await peekGate(env.db.pool, runId);
  if (!peeked?.started) throw new Error(`run ${runId} is not in flight`);
  return { reads: gateReadsFromClaim(peeked.run, peeked.gateReads), readAt: peeked.readAt };
}

async function state(runId: string) {
  const run = await env.db.pool.query<{ status: string; phase: string | null }>('SELECT status, phase FROM cutter_governance.run WHERE run_id = $1', [runId]);
  const phase = await env.db.pool.query<{ state: string; attempts: number; started_at: Date; finished_at: Date | null }>(
    `SELECT state, attempts, started_at, finished_at FROM cutter_governance.run_phase WHERE run_id = $1 AND phase = 'approval-gate'`,
    [runId],
  );
  const consumed = await env.db.pool.query<{ id: number }>(
    'SELECT id FROM cutter_governance.review_decision WHERE run_id = $1 AND consumed_utc IS NOT NULL ORDER BY id',
    [runId],
  );
  const released = await env.db.pool.query(`SELECT 1 FROM cutter_governance.audit_event WHERE run_id = $1 AND kind = 'gate.released'`, [runId]);
  return { run: run.rows[0], phase: phase.rows[0], consumed: consumed.rows.map((r) => r.id), releasedAudits: released.rowCount };
}

describe('the gate opening', () => {
  it('claims the phase, consumes the approvals it read and audits it in one commit', async () => {
    const run = await approvedRun([[alice, 'SG_1'], [bob, 'EXEC']]);
    const { reads, readAt } = await peek(run.runId);
    // Reading claimed nothing: the run still awaits approval and has no gate phase row.
    expect((await state(run.runId)).run?.status).toBe('awaiting_approval');
    expect((await state(run.runId)).phase).toBeUndefined();

    const opened = await openIfApproved(gate(), reads, { claimed: false, startedAt: readAt });
    expect(opened).toEqual({ consumedNow: true, sg1Keys: [alice.keyId], execKeys: [bob.keyId] });
    const after = await state(run.runId);
    expect(after.run).toEqual({ status: 'running', phase: 'approval-gate' });
    expect(after.phase?.state).toBe('completed');
    expect(after.phase?.attempts).toBe(1);
    // The phase started at the read and finished at the opening.
    expect(after.phase?.started_at.getTime()).toBe(readAt?.getTime());
    expect(after.phase?.finished_at?.getTime()).toBeGreaterThanOrEqual(readAt?.getTime() ?? Infinity);
    expect(after.consumed).toEqual(run.ids);
    expect(after.releasedAudits).toBe(1);
  });

  it('commits its opening durably: the transaction keeps synchronous_commit on', async () => {
    // An opening lost to a crash would look like a gate that never opened, and
    // execute would refuse the run (an asynchronous commit here did exactly
    // that under an immediate stop of PostgreSQL during backup).
    const run = await approvedRun([[alice, 'SG_1'], [bob, 'EXEC']]);
    const client = await env.db.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SELECT cutter_governance.open_gate($1, $2::bigint[], $3, $4::jsonb, $5::jsonb, false, now(), NULL)', [run.runId, run.ids, 'test', '{}', '{}']);
      const { rows } = await client.query<{ setting: string }>(`SELECT current_setting('synchronous_commit') AS setting`);
      expect(rows[0]?.setting).toBe('on');
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });

  it('opens nothing on an incomplete read: the decision waits for the claim', async () => {
    const run = await approvedRun([[alice, 'SG_1']]);
    const { reads, readAt } = await peek(run.runId);
    expect(await openIfApproved(gate(), reads, { claimed: false, startedAt: readAt })).toBeNull();
    const after = await state(run.runId);
    expect(after.run?.status).toBe('awaiting_approval');
    expect(after.consumed).toEqual([]);
  });

  it('consumes only the approvals it judged: one stored after its read stays unconsumed, and the run takes no more', async () => {
    const run = await approvedRun([[alice, 'SG_1'], [bob, 'EXEC']]);
    const { reads, readAt } = await peek(run.runId);
    const late = await store(run, bob, 'SG_1');
    expect(await openIfApproved(gate(), reads, { claimed: false, startedAt: readAt })).not.toBeNull();
    const after = await state(run.runId);
    expect(after.consumed).toEqual(run.ids);
    expect(after.consumed).not.toContain(late);
    await expect(store(run, alice, 'EXEC')).rejects.toMatchObject({ code: 'APPROVAL_RUN_NOT_AWAITING' });
  });

  it('of two deliveries that read the same approvals, opens once; the other finds it already opened after its claim', async () => {
    const run = await approvedRun([[alice, 'SG_1'], [bob, 'EXEC']]);
    const first = await peek(run.runId);
    const twin = await peek(run.runId);
    expect((await openIfApproved(gate(), first.reads, { claimed: false, startedAt: first.readAt }))?.consumedNow).toBe(true);
    // The twin's stale read opens nothing and changes nothing.
    expect(await openIfApproved(gate(), twin.reads, { claimed: false, startedAt: twin.readAt })).toBeNull();
    const claimed = await claimPhase(env.db.pool, run.runId, 'approval-gate');
    const decided = await decideGate(gate(), gateReadsFromClaim(claimed!.run, claimed!.gateReads));
    expect(decided.consumedNow).toBe(false);
    const after = await state(run.runId);
    expect(after.consumed).toEqual(run.ids);
    expect(after.releasedAudits).toBe(1);
  });

  it('does not open a run that ended between its read and its opening', async () => {
    const run = await approvedRun([[alice, 'SG_1'], [bob, 'EXEC']]);
    const { reads, readAt } = await peek(run.runId);
    await env.db.pool.query(`UPDATE cutter_governance.run SET status = 'failed' WHERE run_id = $1`, [run.runId]);
    expect(await openIfApproved(gate(), reads, { claimed: false, startedAt: readAt })).toBeNull();
    const after = await state(run.runId);
    expect(after.run?.status).toBe('failed');
    expect(after.consumed).toEqual([]);
    expect(after.releasedAudits).toBe(0);
    expect(after.phase).toBeUndefined();
  });

  it('after a claim, opening keeps the attempt and start the claim recorded', async () => {
    const run = await approvedRun([[alice, 'SG_1'], [bob, 'EXEC']]);
    const claimed = await claimPhase(env.db.pool, run.runId, 'approval-gate');
    const before = await state(run.runId);
    expect(before.phase?.state).toBe('active');
    const opened = await decideGate(gate(), gateReadsFromClaim(claimed!.run, claimed!.gateReads));
    expect(opened.consumedNow).toBe(true);
    const after = await state(run.runId);
    expect(after.phase?.state).toBe('completed');
    expect(after.phase?.attempts).toBe(before.phase?.attempts);
    expect(after.phase?.started_at.getTime()).toBe(before.phase?.started_at.getTime());
    expect(after.consumed).toEqual(run.ids);
  });

  it('tells whether a gate opened from an index of openings, not by reading the whole audit chain', async () => {
    const run = await approvedRun([[alice, 'SG_1'], [bob, 'EXEC']]);
    const { reads, readAt } = await peek(run.runId);
    expect(await openIfApproved(gate(), reads, { claimed: false, startedAt: readAt })).not.toBeNull();
    const client = await env.db.pool.connect();
    try {
      await client.query('BEGIN');
      // This test's chain is short enough that a scan costs least; what is checked is that an index answers it at all.
      await client.query('SET LOCAL enable_seqscan = off');
      const { rows } = await client.query<{ 'QUERY PLAN': unknown }>(`EXPLAIN (FORMAT JSON) ${GATE_OPENED_SQL}`, [run.runId]);
      expect(JSON.stringify(rows[0]?.['QUERY PLAN'])).toContain('"Index Name":"audit_event_gate_released"');
      expect((await client.query(GATE_OPENED_SQL, [run.runId])).rowCount).toBe(1);
      expect((await client.query(GATE_OPENED_SQL, [`${run.runId}-other`])).rowCount).toBe(0);
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });
});
