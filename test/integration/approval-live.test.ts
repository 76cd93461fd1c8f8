import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBoardServer, type BoardServer } from '../../board/server.js';
import type { PhaseProcessor } from '../../workers/context.js';
import { cutplanWorker } from '../../workers/cutplan/process.js';
import { waitFor } from '../support/poll.js';
import { createRunEnv, type RunEnv } from '../support/run-env.js';
import { approvalFor, enactingSnapshot, gateJobState, postApproval, waitForGate } from '../support/sovereign.js';

/**
 * The whole live run through HTTP: enqueue, pause at SG_1, sign SG_1 and
 * EXEC, POST them, and the run goes on to backup, execute and verify.
 */

const silent = pino({ level: 'silent' });
const generous = { approvalRateLimit: { windowMs: 60_000, limit: 10_000 } };

let env: RunEnv;
let board: BoardServer;
beforeAll(async () => {
  env = await createRunEnv('apprlive');
  await env.startFleet();
  board = await startBoardServer({ cfg: env.cfg, log: silent, port: 0, host: '127.0.0.1', options: { ...generous, sweepIntervalMs: 60_000 } });
});
afterAll(async () => {
  await board.close();
  await env.close();
});

async function unitStates(keys?: string[]) {
  const { rows } = await env.db.pool.query<{ state: string; n: number }>(
    `SELECT state, count(*)::int AS n FROM information_unit
      WHERE corpus = 'ICX-WORK' AND ($1::text[] IS NULL OR key = ANY($1)) GROUP BY state ORDER BY state`,
    [keys ?? null],
  );
  return Object.fromEntries(rows.map((r) => [r.state, r.n]));
}

async function switchOn(runId: string): Promise<boolean> {
  const { rows } = await env.db.pool.query<{ on: boolean }>('SELECT cutter_governance.execution_enabled($1) AS on', [runId]);
  return rows[0]?.on ?? false;
}

const keysBetween = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => `ICX-WORK/${String(from + i).padStart(3, '0')}`);

describe('a live run released through the approval endpoint', () => {
  it('pauses at SG_1, takes a signed SG_1 and EXEC over HTTP, and ends succeeded with the corpus cut as planned', async () => {
    expect(await unitStates()).toEqual({ draft: 98 });
    const runId = await env.enqueue('live', { approvalWindowS: 3600 });
    const run = await waitForGate(env, runId);

    // What the signer reads first: the plan and the allowance it needs.
    const view = (await (await fetch(`${board.url}/runs/${runId}`)).json()) as {
      status: string;
      plan: { plan_sha256: string; unit_count: number };
      approvals: { allowance_needed: { max_units: number; transitions: string[] }; waiting_for: string[] };
    };
    expect(view.status).toBe('awaiting_approval');
    expect(view.plan.plan_sha256).toBe(run.planSha256);
    expect(view.approvals.allowance_needed.max_units).toBe(55);
    expect([...view.approvals.allowance_needed.transitions].sort()).toEqual(['draft->enacted', 'new->draft', 'revise']);
    expect(view.approvals.waiting_for).toEqual(['SG_1', 'EXEC']);

    const exact = `max_units=55; transitions=${view.approvals.allowance_needed.transitions.join(',')}`;
    const sg1 = await postApproval(board.url, runId, approvalFor(run, 'SG_1', env.sovereign.key, { allowance: exact }));
    expect(sg1.status, JSON.stringify(sg1.json)).toBe(201);
    expect(sg1.json).toMatchObject({ accepted: true, gate: 'SG_1', released: false, waiting_for: ['EXEC'] });
    expect(await gateJobState(env.redis, env.cfg.CUTTER_QUEUE_PREFIX, runId)).toBe('delayed');
    expect(await switchOn(runId)).toBe(false);

    const exec = await postApproval(board.url, runId, approvalFor(run, 'EXEC', env.sovereign.key));
    expect(exec.status, JSON.stringify(exec.json)).toBe(201);
    expect(exec.json).toMatchObject({ accepted: true, gate: 'EXEC', released: true, waiting_for: [] });

    const ended = await env.waitForEnd(runId, 90_000);
    expect(ended.status, JSON.stringify(ended.error)).toBe('succeeded');
    expect(ended.verdict).toBe('PASS');
    expect(ended.phases.map((p) => `${p.phase}:${p.state}`)).toEqual([
      'precheck:completed',
      'grant-probe:completed',
      'discover:completed',
      'cutplan:completed',
      'approval-gate:completed',
      'backup:completed',
      'execute:completed',
      'verify:completed',
    ]);
    // The gate's result names the keys that opened it and the decisions its commit consumed.
    const consumed = await env.db.pool.query<{ id: number }>(
      'SELECT id FROM cutter_governance.review_decision WHERE run_id = $1 AND consumed_utc IS NOT NULL ORDER BY id',
      [runId],
    );
    expect(consumed.rows).toHaveLength(2);
    const gatePhase = await env.db.pool.query<{ summary: Record<string, unknown>; attempts: number }>(
      `SELECT summary, attempts FROM cutter_governance.run_phase WHERE run_id = $1 AND phase = 'approval-gate'`,
      [runId],
    );
    expect(gatePhase.rows).toEqual([
      {
        summary: {
          released: 'approvals',
          sg_1_keys: [env.sovereign.key.keyId],
          exec_keys: [env.sovereign.key.keyId],
          quorum: env.cfg.SOVEREIGN_QUORUM,
          decision_ids: consumed.rows.map((r) => r.id),
        },
        attempts: 1,
      },
    ]);
    // 40 drafts enacted, 5 revised, 10 new drafts: exactly the plan.
    expect(await unitStates()).toEqual({ draft: 68, enacted: 40 });
    const { rows } = await env.db.pool.query<{ gate: string; consumed: boolean }>(
      'SELECT gate, consumed_utc IS NOT NULL AS consumed FROM cutter_governance.review_decision WHERE run_id = $1 ORDER BY id',
      [runId],
    );
    expect(rows).toEqual([{ gate: 'SG_1', consumed: true }, { gate: 'EXEC', consumed: true }]);
    const audit = await env.db.pool.query<{ kind: string }>(
      `SELECT kind FROM cutter_governance.audit_event WHERE run_id = $1 AND kind LIKE ANY (ARRAY['approval.%', 'gate.%', 'execute.%']) ORDER BY seq`,
      [runId],
    );
    expect(audit.rows.map((r) => r.kind)).toEqual(['approval.accepted', 'approval.exec_granted', 'gate.released', 'execute.applied']);
    expect(await switchOn(runId)).toBe(false);
    const after = (await (await fetch(`${board.url}/runs/${runId}`)).json()) as { status: string; approvals: { decisions: unknown[] } };
    expect(after.status).toBe('succeeded');
    expect(after.approvals.decisions).toHaveLength(2);
  }, 120_000);

  it('does not lose approvals that arrive while the gate is not yet delayed: the POST waits for it', async () => {
    const answers: Promise<Awaited<ReturnType<typeof postApproval>>>[] = [];
    // Right after cutplan marks the run awaiting_approval, before its job completes.
    const eagerCutplan: PhaseProcessor<'cutplan'> = async (call, deps) => {
      const summary = await cutplanWorker.process(call, deps);
      const run = { runId: call.run.run_id, target: call.run.target, planSha256: summary.plan_sha256 };
      expect(await gateJobState(env.redis, env.cfg.CUTTER_QUEUE_PREFIX, run.runId)).toBe('waiting-children');
      const sg1 = await postApproval(board.url, run.runId, approvalFor(run, 'SG_1', env.sovereign.key));
      expect(sg1.status, JSON.stringify(sg1.json)).toBe(201);
      answers.push(postApproval(board.url, run.runId, approvalFor(run, 'EXEC', env.sovereign.key)));
      return summary;
    };
    await env.startFleet({ cutplan: eagerCutplan });
    const keys = keysBetween(50, 54);
    const runId = await env.enqueue('live', { snapshot: enactingSnapshot(env.dir, 50, 54), approvalWindowS: 3600 });
    await waitFor('the EXEC answer', () => (answers.length ? true : undefined));
    const exec = await answers[0];
    expect(exec?.json).toMatchObject({ accepted: true, gate: 'EXEC', released: true });
    const ended = await env.waitForEnd(runId, 90_000);
    expect(ended.status, JSON.stringify(ended.error)).toBe('succeeded');
    expect(await unitStates(keys)).toEqual({ enacted: 5 });
  }, 120_000);

  it('releases through the sweeper when the POST gave up waiting for the gate', async () => {
    const impatient = await startBoardServer({
      cfg: env.cfg,
      log: silent,
      port: 0,
      host: '127.0.0.1',
      options: { ...generous, releaseWaitMs: 0, sweepIntervalMs: 60_000 },
    });
    const answers: Awaited<ReturnType<typeof postApproval>>[] = [];
    const eagerCutplan: PhaseProcessor<'cutplan'> = async (call, deps) => {
      const summary = await cutplanWorker.process(call, deps);
      const run = { runId: call.run.run_id, target: call.run.target, planSha256: summary.plan_sha256 };
      answers.push(await postApproval(impatient.url, run.runId, approvalFor(run, 'SG_1', env.sovereign.key)));
      answers.push(await postApproval(impatient.url, run.runId, approvalFor(run, 'EXEC', env.sovereign.key)));
      return summary;
    };
    try {
      await env.startFleet({ cutplan: eagerCutplan });
      const runId = await env.enqueue('live', { snapshot: enactingSnapshot(env.dir, 60, 62), approvalWindowS: 3600 });
      await waitForGate(env, runId);
      expect(answers[1]?.json).toMatchObject({ accepted: true, gate: 'EXEC', released: false, waiting_for: ['release'] });
      // Recorded, complete, not yet released: one sweep finds and releases it.
      expect(await impatient.sweeper.sweepOnce()).toEqual([runId]);
      const ended = await env.waitForEnd(runId, 90_000);
      expect(ended.status, JSON.stringify(ended.error)).toBe('succeeded');
      expect(await unitStates(keysBetween(60, 62))).toEqual({ enacted: 3 });
    } finally {
      await impatient.close();
    }
  }, 120_000);

  it('ends expired when the window passes with only an SG_1 approval, turns nothing on, and refuses approvals afterwards', async () => {
    await env.startFleet();
    const keys = keysBetween(70, 71);
    const runId = await env.enqueue('live', { snapshot: enactingSnapshot(env.dir, 70, 71), approvalWindowS: 3 });
    const run = await waitForGate(env, runId);
    const sg1 = await postApproval(board.url, runId, approvalFor(run, 'SG_1', env.sovereign.key));
    expect(sg1.json).toMatchObject({ accepted: true, released: false, waiting_for: ['EXEC'] });
    const ended = await env.waitForEnd(runId);
    expect(ended.status).toBe('expired');
    expect(ended.error?.code).toBe('APPROVAL_EXPIRED');
    expect(await unitStates(keys)).toEqual({ draft: 2 });
    const late = await postApproval(board.url, runId, approvalFor(run, 'EXEC', env.sovereign.key));
    expect(late.status).toBe(409);
    expect(late.json.error?.code).toBe('APPROVAL_RUN_NOT_AWAITING');
    expect(await switchOn(runId)).toBe(false);
    const lock = await env.db.pool.query('SELECT 1 FROM cutter_governance.corpus_lock');
    expect(lock.rowCount).toBe(0);
  }, 60_000);
});
