import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Job } from 'bullmq';
import { pino } from 'pino';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { GATE_READS, gateReadsFromClaim, loadGateRun } from '../../shared/approval/binding.js';
import { storeDecision } from '../../shared/approval/store.js';
import { parseConfig } from '../../shared/config.js';
import type { PoolClient } from '../../shared/db/pool.js';
import { openPhaseQueues } from '../../shared/jobs/queues.js';
import { createRedis } from '../../shared/redis.js';
import { claimPhase } from '../../shared/runs/store.js';
import { approvalGateWorker } from '../../workers/approval-gate/process.js';
import type { PhaseDeps } from '../../workers/context.js';
import { phaseRunner } from '../../workers/phase-runner.js';
import { approvalDatabase, arrivedApproval } from '../support/approval-db.js';
import { insertPausedRun, type PausedRun } from '../support/paused-run.js';
import { waitFor } from '../support/poll.js';
import { testQueuePrefix } from '../support/prefix.js';
import { makeKey, writeTrustedKeys, type TestKey } from '../support/sovereign.js';

/**
 * SG_1 through the real phase runner: the gate decides on one read, taken in
 * its claim after the run's lock, and the commit that records the phase
 * completed consumes exactly the approvals that opened it. How the job was
 * woken (an approval's release, the window's end, a promote by hand) is never
 * consulted: only what PostgreSQL holds.
 */

const alice = makeKey('alice');
const bob = makeKey('bob');
const env = approvalDatabase('gate', [alice, bob]);
const keysDir = mkdtempSync(join(tmpdir(), 'cutter-gate-keys-'));
const redis = createRedis(inject('redisUrl'));
// The runner removes a failed run's later jobs: here there are none, under a prefix of this file's own.
const queues = openPhaseQueues(redis, testQueuePrefix('gate'));

afterAll(async () => {
  await Promise.all(Object.values(queues).map((q) => q.close()));
  redis.disconnect();
  rmSync(keysDir, { recursive: true, force: true });
});

function deps(): PhaseDeps {
  const cfg = parseConfig({
    DATABASE_URL: env.db.url,
    REDIS_URL: inject('redisUrl'),
    SOVEREIGN_KEYS: writeTrustedKeys(keysDir, [alice, bob]),
    SOVEREIGN_QUORUM: '1',
    LOG_LEVEL: 'silent',
  });
  return { pool: env.db.pool, cfg, log: pino({ level: 'silent' }), redis, queues };
}

/** One delivery of the run's gate job, as BullMQ hands it to a worker. */
function wake(runId: string): Promise<unknown> {
  const job = { id: `${runId}.approval-gate`, data: { runId }, attemptsMade: 0, opts: { attempts: 1 }, updateProgress: () => Promise.resolve() } as unknown as Job;
  return phaseRunner('approval-gate', approvalGateWorker, deps())(job);
}

async function store(run: PausedRun, key: TestKey, gate: 'SG_1' | 'EXEC'): Promise<number> {
  return storeDecision(env.db.pool, await arrivedApproval(env, run, gate, key));
}

/** A paused run with approvals by `by`, stored as the endpoint stores them (the switch turned on by the EXEC grant). */
async function approvedRun(by: [TestKey, 'SG_1' | 'EXEC'][]): Promise<PausedRun & { ids: number[] }> {
  await env.db.pool.query(`UPDATE cutter_governance.execution_switch SET enabled = false, run_id = NULL, expires_at = NULL, changed_by = 'test'`);
  const run = await insertPausedRun(env.db.pool);
  const ids: number[] = [];
  for (const [key, gate] of by) ids.push(await store(run, key, gate));
  return { ...run, ids };
}

async function state(runId: string) {
  const run = await env.db.pool.query<{ status: string; error_code: string | null }>('SELECT status, error_code FROM cutter_governance.run WHERE run_id = $1', [runId]);
  const phase = await env.db.pool.query<{ state: string; attempts: number; summary: unknown }>(
    `SELECT state, attempts, summary FROM cutter_governance.run_phase WHERE run_id = $1 AND phase = 'approval-gate'`,
    [runId],
  );
  const consumed = await env.db.pool.query<{ id: number }>('SELECT id FROM cutter_governance.review_decision WHERE run_id = $1 AND consumed_utc IS NOT NULL ORDER BY id', [runId]);
  const audits = await env.db.pool.query<{ kind: string }>(`SELECT kind FROM cutter_governance.audit_event WHERE run_id = $1 AND kind LIKE 'gate.%' ORDER BY seq`, [runId]);
  const { rows } = await env.db.pool.query<{ on: boolean }>('SELECT cutter_governance.execution_enabled($1) AS on', [runId]);
  return {
    status: run.rows[0]?.status,
    error: run.rows[0]?.error_code ?? null,
    phase: phase.rows[0],
    consumed: consumed.rows.map((r) => r.id),
    gateAudits: audits.rows.map((r) => r.kind),
    switchOn: rows[0]?.on,
  };
}

describe('the approval gate', () => {
  it('opens on a valid SG_1 and EXEC: consumes exactly those, audits it and completes the phase in one commit', async () => {
    const run = await approvedRun([[alice, 'SG_1'], [bob, 'EXEC']]);
    await expect(wake(run.runId)).resolves.toMatchObject({ released: 'approvals', decision_ids: run.ids });
    const after = await state(run.runId);
    expect(after.status).toBe('running');
    expect(after.phase?.state).toBe('completed');
    expect(after.phase?.summary).toEqual({ released: 'approvals', sg_1_keys: [alice.keyId], exec_keys: [bob.keyId], quorum: 1, decision_ids: run.ids });
    expect(after.consumed).toEqual(run.ids);
    expect(after.gateAudits).toEqual(['gate.released']);
    // The EXEC grant's switch stays on for execute.
    expect(after.switchOn).toBe(true);
  });

  it('fails the run closed when promoted by hand without a valid approval in Postgres, audited, with the switch off', async () => {
    const run = await approvedRun([[bob, 'EXEC']]);
    await expect(wake(run.runId)).rejects.toThrow(/GATE_BYPASSED/);
    const after = await state(run.runId);
    expect(after).toMatchObject({ status: 'failed', error: 'GATE_BYPASSED', consumed: [], switchOn: false });
    expect(after.gateAudits).toEqual(['gate.released_without_approval']);
  });

  it('ends the run expired when it wakes at the window’s end without approvals', async () => {
    const run = await approvedRun([[alice, 'SG_1']]);
    await env.db.pool.query(`UPDATE cutter_governance.run_phase SET finished_at = now() - interval '2 hours' WHERE run_id = $1 AND phase = 'cutplan'`, [run.runId]);
    await expect(wake(run.runId)).rejects.toThrow(/APPROVAL_EXPIRED/);
    expect(await state(run.runId)).toMatchObject({ status: 'expired', error: 'APPROVAL_EXPIRED', consumed: [], gateAudits: [] });
  });

  it('does not count an approval received after the window ended, even one written in by hand', async () => {
    const run = await approvedRun([[alice, 'SG_1'], [bob, 'EXEC']]);
    await env.db.pool.query(`UPDATE cutter_governance.review_decision SET received_utc = now() + interval '2 hours' WHERE run_id = $1 AND gate = 'SG_1'`, [run.runId]);
    await expect(wake(run.runId)).rejects.toThrow(/GATE_BYPASSED/);
    expect((await state(run.runId)).consumed).toEqual([]);
  });

  it('on a redelivery after it opened, finds it open: nothing consumed twice, not a bypass', async () => {
    const run = await approvedRun([[alice, 'SG_1'], [bob, 'EXEC']]);
    await wake(run.runId);
    await expect(wake(run.runId)).resolves.toMatchObject({ released: 'already', decision_ids: [] });
    const after = await state(run.runId);
    expect(after.status).toBe('running');
    expect(after.phase).toMatchObject({ state: 'completed', attempts: 2 });
    expect(after.consumed).toEqual(run.ids);
    expect(after.gateAudits).toEqual(['gate.released']);
  });

  it('of two deliveries at once, one opens; the other changes nothing and the run goes on', async () => {
    const run = await approvedRun([[alice, 'SG_1'], [bob, 'EXEC']]);
    const results = await Promise.allSettled([wake(run.runId), wake(run.runId)]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled']);
    const after = await state(run.runId);
    expect(after.status).toBe('running');
    expect(after.consumed).toEqual(run.ids);
    expect(after.gateAudits).toEqual(['gate.released']);
  });

  it('consumes only what it judged: an approval stored after its claim is refused, one stored before it is counted', async () => {
    const run = await approvedRun([[alice, 'SG_1'], [bob, 'EXEC']]);
    await wake(run.runId);
    // The claim set the run running under its lock: the store refuses from then on.
    await expect(store(run, bob, 'SG_1')).rejects.toMatchObject({ code: 'APPROVAL_RUN_NOT_AWAITING' });
    expect((await state(run.runId)).consumed).toEqual(run.ids);
  });
});

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

/** Stores an SG_1 approval inside an open transaction on client: the run stays locked until the caller commits. */
async function storeUncommitted(client: PoolClient, run: PausedRun): Promise<number> {
  const valid = await arrivedApproval(env, run, 'SG_1', alice);
  await client.query('BEGIN');
  return storeDecision(client, valid);
}

describe("the gate's claim", () => {
  it('reads the run and its approvals, including one committed while the claim waited for the run lock', async () => {
    const run = await insertPausedRun(env.db.pool);
    const holder = await env.db.pool.connect();
    try {
      const decisionId = await storeUncommitted(holder, run);
      const claiming = claimPhase(env.db.pool, run.runId, 'approval-gate', GATE_READS);
      // The claim's statement, as pg_stat_activity shows its start (the text is cut at 1 kB).
      await untilWaiting('WITH async AS MATERIALIZED');
      await holder.query('COMMIT');
      const claimed = await claiming;
      expect(claimed?.started).toBe(true);
      expect(claimed?.run.status).toBe('running');
      const reads = gateReadsFromClaim(claimed!.run, claimed!.reads);
      expect(reads.unconsumed.map((d) => d.id)).toEqual([decisionId]);
      expect(reads.opened).toBe(false);
      // The same run as the approval rules read it on their own.
      expect(reads.run).toEqual({ ...(await loadGateRun(env.db.pool, run.runId)), status: 'running' });
    } finally {
      holder.release();
    }
  });

  it('control: a plain sub-select in the claiming statement misses that approval', async () => {
    const run = await insertPausedRun(env.db.pool);
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
    } finally {
      holder.release();
    }
  });

  it('reads nothing for a phase that declares no read, and refuses a read that is not a cutter_governance function', async () => {
    const run = await insertPausedRun(env.db.pool);
    expect((await claimPhase(env.db.pool, run.runId, 'backup'))?.reads).toBeNull();
    await expect(claimPhase(env.db.pool, run.runId, 'backup', 'cutter_governance.x(1); DROP TABLE y; --')).rejects.toThrow(
      /not a cutter_governance function/,
    );
  });
});
