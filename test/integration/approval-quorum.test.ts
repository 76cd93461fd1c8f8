import { Queue } from 'bullmq';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBoardServer, type BoardServer } from '../../board/server.js';
import { startFleet, type Fleet } from '../../workers/fleet.js';
import { waitFor } from '../support/poll.js';
import { createRunEnv, type RunEnv } from '../support/run-env.js';
import { approvalFor, enactingSnapshot, gateJobState, makeKey, postApproval, waitForGate, writeTrustedKeys } from '../support/sovereign.js';

/** SOVEREIGN_QUORUM = 2: SG_1 needs two distinct trusted keys, and nothing short of that executes. */

const silent = pino({ level: 'silent' });
const carol = makeKey('carol');
let env: RunEnv;
let fleet: Fleet;
let board: BoardServer;

beforeAll(async () => {
  env = await createRunEnv('apprquorum');
  writeTrustedKeys(env.sovereign.dir, [carol]);
  const cfg = { ...env.cfg, SOVEREIGN_QUORUM: 2 };
  fleet = await startFleet({ cfg, log: silent });
  board = await startBoardServer({ cfg, log: silent, port: 0, host: '127.0.0.1', options: { approvalRateLimit: { windowMs: 60_000, limit: 1000 }, sweepIntervalMs: 60_000 } });
}, 120_000);
afterAll(async () => {
  await board.close();
  await fleet.close();
  await env.close();
});

async function decisions(runId: string): Promise<number> {
  const { rows } = await env.db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM cutter_governance.review_decision WHERE run_id = $1', [runId]);
  return rows[0]?.n ?? -1;
}

async function switchOn(runId: string): Promise<boolean> {
  const { rows } = await env.db.pool.query<{ on: boolean }>('SELECT cutter_governance.execution_enabled($1) AS on', [runId]);
  return rows[0]?.on ?? false;
}

describe('an SG_1 quorum of two keys', () => {
  it('is not reached by one key with the EXEC grant, nor by the same key twice; a second key releases the run', async () => {
    const runId = await env.enqueue('live', { snapshot: enactingSnapshot(env.dir, 10, 14), approvalWindowS: 3600 });
    const run = await waitForGate(env, runId);
    const alice = env.sovereign.key;

    const first = await postApproval(board.url, runId, approvalFor(run, 'SG_1', alice));
    expect(first.json).toMatchObject({ accepted: true, released: false, waiting_for: ['SG_1', 'EXEC'], sg_1: { valid_keys: 1, quorum: 2 } });
    const exec = await postApproval(board.url, runId, approvalFor(run, 'EXEC', alice));
    expect(exec.json).toMatchObject({ accepted: true, released: false, waiting_for: ['SG_1'], exec_granted: true });
    expect(await gateJobState(env.redis, env.cfg.CUTTER_QUEUE_PREFIX, runId)).toBe('delayed');

    // Quorum not reached by signing again with the same key.
    const again = await postApproval(board.url, runId, approvalFor(run, 'SG_1', alice));
    expect(again.status).toBe(409);
    expect(again.json.error?.code).toBe('APPROVAL_KEY_ALREADY_USED');
    expect(await decisions(runId)).toBe(2);
    expect(await gateJobState(env.redis, env.cfg.CUTTER_QUEUE_PREFIX, runId)).toBe('delayed');

    const second = await postApproval(board.url, runId, approvalFor(run, 'SG_1', carol));
    expect(second.json).toMatchObject({ accepted: true, released: true, waiting_for: [], sg_1: { valid_keys: 2, quorum: 2 } });
    const view = await env.waitForEnd(runId, 90_000);
    expect(view.status, JSON.stringify(view.error)).toBe('succeeded');
    const audit = await env.db.pool.query<{ detail: { sg_1_keys: string[] } }>(
      `SELECT detail FROM cutter_governance.audit_event WHERE kind = 'gate.released' AND run_id = $1`,
      [runId],
    );
    expect(audit.rows[0]?.detail.sg_1_keys.sort()).toEqual([alice.keyId, carol.keyId].sort());
  }, 120_000);

  it('a hand-added execute job executes nothing, even with the kill switch on for the run', async () => {
    const before = await env.corpus();
    const runId = await env.enqueue('live', { snapshot: enactingSnapshot(env.dir, 20, 24), approvalWindowS: 3600 });
    const run = await waitForGate(env, runId);
    await postApproval(board.url, runId, approvalFor(run, 'SG_1', env.sovereign.key));
    const exec = await postApproval(board.url, runId, approvalFor(run, 'EXEC', env.sovereign.key));
    expect(exec.json).toMatchObject({ released: false, waiting_for: ['SG_1'] });
    expect(await switchOn(runId)).toBe(true);

    // What Bull Board's "add job" or a script would do: a job naming a real, paused run.
    const queue = new Queue('execute', { connection: env.redis, prefix: env.cfg.CUTTER_QUEUE_PREFIX });
    const job = await queue.add('execute', { runId }, { attempts: 1 });
    await waitFor('the hand-added job to fail', async () => ((await job.isFailed()) ? true : undefined));
    // Not the run's own job (its id is not `${runId}.execute`): it does nothing, and the anomaly is on record.
    expect((await queue.getJob(job.id ?? ''))?.failedReason).toMatch(/PHASE_ANOMALY/);
    await queue.close();

    expect(await env.corpus()).toEqual(before);
    const ledger = await env.db.pool.query('SELECT 1 FROM cutter_governance.execution_ledger WHERE run_id = $1', [runId]);
    expect(ledger.rowCount).toBe(0);
    const anomaly = await env.db.pool.query(`SELECT 1 FROM cutter_governance.audit_event WHERE kind = 'phase.anomaly' AND run_id = $1`, [runId]);
    expect(anomaly.rowCount).toBe(1);
    // The run itself is as it was: paused, waiting for its second SG_1 key.
    expect((await env.db.pool.query<{ status: string }>('SELECT status FROM cutter_governance.run WHERE run_id = $1', [runId])).rows[0]?.status).toBe('awaiting_approval');
  }, 120_000);
});
