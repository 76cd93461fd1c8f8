import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBoardServer, type BoardServer } from '../../board/server.js';
import { enqueueRun } from '../../producers/flow/enqueue.js';
import type { Pool, PoolClient } from '../../shared/db/pool.js';
import { CutterError } from '../../shared/errors.js';
import { PHASE_MOMENT_CHANNEL, type PhaseMoment, type PhaseMomentMessage } from '../../shared/jobs/moments.js';
import { cancelRunInDb } from '../../shared/stop/cancel.js';
import type { PhaseProcessor } from '../../workers/context.js';
import { runCli } from '../support/cli.js';
import { waitFor } from '../support/poll.js';
import { PENDING_STATES, runJobs } from '../support/run-jobs.js';
import { armSwitch, createRunEnv, DEMO_SNAPSHOT, type RunEnv, STAND_IN_GATE } from '../support/run-env.js';
import { approvalFor, enactingSnapshot, postApproval, waitForGate } from '../support/sovereign.js';

/**
 * Saying no to a run (issue 25): `cutter cancel` from every state before
 * execute, a signed rejection at the gate, and what a failed or expired run
 * leaves in the queues. Each run is checked as an operator would: its status,
 * every phase queue, the corpus lock (a new run on the target enqueues) and
 * the corpus itself.
 */

let env: RunEnv;
let board: BoardServer;
let cliEnv: Record<string, string>;
beforeAll(async () => {
  env = await createRunEnv('stoprun');
  board = await startBoardServer({ cfg: env.cfg, log: pino({ level: 'silent' }), port: 0, host: '127.0.0.1' });
  cliEnv = { ...env.env, CUTTER_API_URL: board.url };
}, 120_000);
afterAll(async () => {
  await board.close();
  await env.close();
});

/** Parks the in-process fleet's phase at a moment of one run until released. */
function holdAt(moment: PhaseMoment, runId: string): { reached: Promise<void>; release: () => void } {
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  let reached!: () => void;
  const reachedP = new Promise<void>((r) => (reached = r));
  const listener = (message: unknown): void => {
    const m = message as PhaseMomentMessage;
    if (m.moment !== moment || m.runId !== runId) return;
    m.hold = held;
    reached();
  };
  subscribe(PHASE_MOMENT_CHANNEL, listener);
  return {
    reached: reachedP,
    release: () => {
      unsubscribe(PHASE_MOMENT_CHANNEL, listener);
      release();
    },
  };
}

async function runRow(runId: string) {
  const { rows } = await env.db.pool.query<{ status: string; phase: string | null; error_code: string | null; error_message: string | null; report: string | null }>(
    'SELECT status, phase, error_code, error_message, report FROM cutter_governance.run WHERE run_id = $1',
    [runId],
  );
  return rows[0];
}

async function auditOf(runId: string, kind: string) {
  const { rows } = await env.db.pool.query<{ actor: string; detail: Record<string, unknown> }>(
    'SELECT actor, detail FROM cutter_governance.audit_event WHERE run_id = $1 AND kind = $2',
    [runId, kind],
  );
  return rows;
}

async function stagedRows(runId: string): Promise<number> {
  const { rows } = await env.db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM cutter_governance.snapshot_record WHERE run_id = $1', [runId]);
  return rows[0]?.n ?? -1;
}

async function switchOnFor(runId: string): Promise<boolean> {
  const { rows } = await env.db.pool.query<{ on: boolean }>('SELECT cutter_governance.execution_enabled($1) AS on', [runId]);
  return rows[0]?.on ?? true;
}

/** No job of the run in any phase queue, in any state. */
async function expectNoJobs(runId: string): Promise<void> {
  expect(await runJobs(env.redis, env.cfg.CUTTER_QUEUE_PREFIX, runId)).toEqual({});
}

/** The corpus is free: a new run on the same target enqueues (then it is cancelled, or ends by itself if a fleet is quicker). */
async function expectCorpusFree(): Promise<void> {
  const next = await env.enqueue('dry');
  const cancelled = await runCli(['cancel', next, '--reason', 'only proving the corpus lock is free'], cliEnv);
  expect([0, 1], cancelled.stderr).toContain(cancelled.code);
  await env.waitForEnd(next);
}

async function cancel(runId: string, reason = 'the operator changed their mind') {
  return runCli(['cancel', runId, '--reason', reason, '--json'], cliEnv);
}

describe('cutter cancel', () => {
  it('cancels a queued run (no worker has taken it): cancelled, no job left, corpus free and unchanged, audited; a second cancel says so', async () => {
    const before = await env.corpus();
    const runId = await env.enqueue('live');
    expect(Object.keys(await runJobs(env.redis, env.cfg.CUTTER_QUEUE_PREFIX, runId))).toHaveLength(8);

    const first = await cancel(runId, 'wrong snapshot');
    expect(first.code, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({ run_id: runId, cancelled: true, already: false, status: 'cancelled', active_jobs: [] });
    const row = await runRow(runId);
    expect(row).toMatchObject({ status: 'cancelled', error_code: 'RUN_CANCELLED', error_message: 'wrong snapshot' });
    expect(row?.report).toContain('status: cancelled (RUN_CANCELLED at no phase: wrong snapshot)');
    const status = await runCli(['status', runId], cliEnv);
    expect(status.code).toBe(1);
    expect(status.stdout).toContain('cancelled: RUN_CANCELLED: wrong snapshot');
    const audited = await auditOf(runId, 'run.cancelled');
    expect(audited).toHaveLength(1);
    expect(audited[0]).toMatchObject({ actor: 'tester', detail: { actor: 'tester', reason: 'wrong snapshot', phase: null } });
    await expectNoJobs(runId);

    const again = await runCli(['cancel', runId, '--reason', 'again'], cliEnv);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain(`run ${runId} was already cancelled`);
    expect(await auditOf(runId, 'run.cancelled')).toHaveLength(1);

    expect(await env.corpus()).toEqual(before);
    await expectCorpusFree();
  });

  it('cancels a run in the instant between its row and its jobs: the jobs its enqueue adds afterwards go too', async () => {
    // The enqueue's transaction commits, a cancel lands, and only then does the enqueue add the flow.
    let cancelled: Promise<unknown> | undefined;
    const real = env.db.pool;
    const onCommit = (client: PoolClient): PoolClient => {
      const query = client.query.bind(client) as (text: string, values?: unknown[]) => Promise<unknown>;
      let runId: string | undefined;
      const racing = async (text: string, values?: unknown[]): Promise<unknown> => {
        if (text.includes('INSERT INTO cutter_governance.run')) runId = String(values?.[0]);
        const result = await query(text, values);
        if (text === 'COMMIT' && runId) {
          cancelled = cancelRunInDb(real, { runId, actor: 'tester', reason: 'between the row and the flow' });
          await cancelled;
        }
        return result;
      };
      return Object.assign(Object.create(client) as PoolClient, { query: racing });
    };
    // Single statements go to the real pool; transactions get the racing client.
    const pool = Object.assign(Object.create(real) as Pool, { query: real.query.bind(real), connect: async () => onCommit(await real.connect()) });
    const { runId } = await enqueueRun(
      { pool, redis: env.redis, prefix: env.cfg.CUTTER_QUEUE_PREFIX },
      { target: 'icx-work', snapshotPath: DEMO_SNAPSHOT, mode: 'live', operator: 'tester', approvalWindowS: 3600 },
    );
    expect(await cancelled).toMatchObject({ outcome: 'stopped' });
    expect((await runRow(runId))?.status).toBe('cancelled');
    await expectNoJobs(runId);
    await expectCorpusFree();
  });

  it('cancels a run while an earlier phase is running: the phase finishes without a result, its staged rows and its job go too', async () => {
    await env.startFleet();
    const before = await env.corpus();
    const runId = await env.enqueue('live');
    // Discover has staged the snapshot and is about to complete.
    const hold = holdAt('discover.after', runId);
    await hold.reached;
    expect(await stagedRows(runId)).toBeGreaterThan(0);

    const result = await cancel(runId);
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ cancelled: true, phase: 'discover', active_jobs: ['discover'] });
    expect(await stagedRows(runId)).toBe(0);
    // Only the active job is left, and it is still active.
    expect(await runJobs(env.redis, env.cfg.CUTTER_QUEUE_PREFIX, runId)).toEqual({ discover: { state: 'active' } });

    hold.release();
    await waitFor('the discover job to go', async () => (Object.keys(await runJobs(env.redis, env.cfg.CUTTER_QUEUE_PREFIX, runId)).length === 0 ? true : undefined));
    const phases = await env.db.pool.query<{ phase: string; state: string }>('SELECT phase, state FROM cutter_governance.run_phase WHERE run_id = $1 ORDER BY started_at', [runId]);
    expect(phases.rows).toEqual([
      { phase: 'precheck', state: 'completed' },
      { phase: 'grant-probe', state: 'completed' },
      { phase: 'discover', state: 'skipped' },
    ]);
    expect((await runRow(runId))?.status).toBe('cancelled');
    expect(await stagedRows(runId)).toBe(0);
    expect(await env.corpus()).toEqual(before);
    await expectCorpusFree();
  });

  it('cancels a run awaiting approval whose EXEC grant turned the switch on: the delayed gate goes, the switch is off', async () => {
    await env.startFleet();
    const before = await env.corpus();
    const runId = await env.enqueue('live', { snapshot: enactingSnapshot(env.dir, 40, 42) });
    const run = await waitForGate(env, runId);
    const granted = await postApproval(board.url, runId, approvalFor(run, 'EXEC', env.sovereign.key));
    expect(granted.status).toBe(201);
    expect(await switchOnFor(runId)).toBe(true);
    expect((await runJobs(env.redis, env.cfg.CUTTER_QUEUE_PREFIX, runId))['approval-gate']?.state).toBe('delayed');

    const result = await cancel(runId, 'not this week');
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ cancelled: true, phase: 'cutplan', status: 'cancelled' });
    expect(await switchOnFor(runId)).toBe(false);
    await expectNoJobs(runId);
    // An approval arriving now finds nothing to approve.
    const late = await postApproval(board.url, runId, approvalFor(run, 'SG_1', env.sovereign.key));
    expect(late.json.error?.code).toBe('APPROVAL_RUN_NOT_AWAITING');
    expect(await env.corpus()).toEqual(before);
    await expectCorpusFree();
  });

  it('cancels a run whose gate opened, before execute: the switch is off, execute never runs, nothing changes', async () => {
    const armingGate: PhaseProcessor<'approval-gate'> = async ({ run }) => {
      await armSwitch(env, run.run_id);
      return STAND_IN_GATE;
    };
    await env.startFleet({ 'approval-gate': armingGate });
    const before = await env.corpus();
    const runId = await env.enqueue('live', { snapshot: enactingSnapshot(env.dir, 45, 46), approvalWindowS: 1 });
    const hold = holdAt('backup.before', runId);
    await hold.reached;
    expect(await switchOnFor(runId)).toBe(true);
    const result = await cancel(runId, 'stop before it cuts');
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ cancelled: true, phase: 'backup', active_jobs: ['backup'] });
    expect(await switchOnFor(runId)).toBe(false);
    hold.release();
    await waitFor('the backup job to go', async () => (Object.keys(await runJobs(env.redis, env.cfg.CUTTER_QUEUE_PREFIX, runId)).length === 0 ? true : undefined));
    const phases = await env.db.pool.query<{ phase: string; state: string }>('SELECT phase, state FROM cutter_governance.run_phase WHERE run_id = $1 AND phase IN ($2, $3, $4)', [runId, 'backup', 'execute', 'verify']);
    expect(phases.rows).toEqual([{ phase: 'backup', state: 'skipped' }]);
    expect((await runRow(runId))?.status).toBe('cancelled');
    expect(await env.corpus()).toEqual(before);
    await expectCorpusFree();
  });

  it('refuses once execute has begun (exit 1, naming the phase), and the run goes on', async () => {
    const armingGate: PhaseProcessor<'approval-gate'> = async ({ run }) => {
      await armSwitch(env, run.run_id);
      return STAND_IN_GATE;
    };
    await env.startFleet({ 'approval-gate': armingGate });
    const runId = await env.enqueue('live', { snapshot: enactingSnapshot(env.dir, 50, 51), approvalWindowS: 1 });
    const hold = holdAt('execute.before', runId);
    await hold.reached;
    const refused = await cancel(runId);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/its execute phase has begun.*\[CANCEL_TOO_LATE\]/);
    expect(JSON.parse(refused.stdout)).toMatchObject({ cancelled: false, phase: 'execute', error: { code: 'CANCEL_TOO_LATE' } });
    expect(await auditOf(runId, 'run.cancelled')).toEqual([]);
    hold.release();
    expect((await env.waitForEnd(runId)).status).toBe('succeeded');

    const ended = await cancel(runId);
    expect(ended.code).toBe(1);
    expect(ended.stderr).toMatch(/already ended succeeded.*\[RUN_ENDED\]/);
    // Put the enacted units back as drafts for the tests after this one.
    await env.db.pool.query(`UPDATE information_unit SET state = 'draft' WHERE key IN ('ICX-WORK/050', 'ICX-WORK/051')`);
  });

  it('answers 2 for an unknown run and for a bad reason, changing nothing', async () => {
    const unknown = await cancel('run-20990101-000000-ffffff');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no run run-20990101-000000-ffffff.*\[RUN_UNKNOWN\]/);
    const badReason = await runCli(['cancel', 'run-20990101-000000-ffffff', '--reason', 'tab\there'], cliEnv);
    expect(badReason.code).toBe(2);
    expect(badReason.stderr).toContain('[REASON_INVALID]');
  });
});

describe('a signed rejection', () => {
  it('ends a run awaiting approval rejected: recorded with its reason, audited, no job left, switch off, corpus free and unchanged', async () => {
    await env.startFleet();
    const before = await env.corpus();
    const runId = await env.enqueue('live', { snapshot: enactingSnapshot(env.dir, 60, 61) });
    const run = await waitForGate(env, runId);
    expect((await postApproval(board.url, runId, approvalFor(run, 'EXEC', env.sovereign.key))).status).toBe(201);
    const keyFile = join(env.dir, 'sovereign-a.pem');
    writeFileSync(keyFile, env.sovereign.key.privatePem, { mode: 0o600 });

    // Bad input first: a reason that is too long is refused by the signer, and a forged one by the endpoint.
    const tooLong = await runCli(['approval', 'sign', '--gate', 'REJECT', '--run', runId, '--key', keyFile, '--reason', 'x'.repeat(201)], cliEnv);
    expect(tooLong.code).toBe(2);
    expect(tooLong.stderr).toContain('[REASON_INVALID]');
    const badLine = await postApproval(board.url, runId, approvalFor(run, 'REJECT', env.sovereign.key, { allowance: 'because=no' }));
    expect(badLine.status).toBe(400);
    expect(badLine.json.error?.code).toBe('APPROVAL_DOCUMENT_FIELD');
    const wrongPlan = await postApproval(board.url, runId, approvalFor({ ...run, planSha256: 'ab'.repeat(32) }, 'REJECT', env.sovereign.key, { allowance: 'reason=no' }));
    expect(wrongPlan.json.error?.code).toBe('APPROVAL_PLAN_MISMATCH');
    expect((await runRow(runId))?.status).toBe('awaiting_approval');

    const file = join(env.dir, 'reject.json');
    const sign = await runCli(['approval', 'sign', '--gate', 'REJECT', '--run', runId, '--key', keyFile, '--reason', 'plan touches the wrong units', '--out', file], cliEnv);
    expect(sign.code, sign.stderr).toBe(0);
    expect(sign.stdout).toContain('gate: REJECT\n');
    expect(sign.stdout).toContain('allowance: reason=plan touches the wrong units\n');
    const submit = await runCli(['approval', 'submit', file], cliEnv);
    expect(submit.code, submit.stderr).toBe(0);
    expect(submit.stdout).toContain(`rejected: run ${runId} has ended rejected`);

    const row = await runRow(runId);
    expect(row).toMatchObject({ status: 'rejected', error_code: 'RUN_REJECTED', error_message: 'plan touches the wrong units' });
    expect(row?.report).toContain('status: rejected');
    const decisions = await env.db.pool.query<{ gate: string; key_id: string; reason: string | null; consumed: boolean }>(
      'SELECT gate, key_id, reason, consumed_utc IS NOT NULL AS consumed FROM cutter_governance.review_decision WHERE run_id = $1 ORDER BY id',
      [runId],
    );
    expect(decisions.rows).toEqual([
      { gate: 'EXEC', key_id: env.sovereign.key.keyId, reason: null, consumed: false },
      { gate: 'REJECT', key_id: env.sovereign.key.keyId, reason: 'plan touches the wrong units', consumed: true },
    ]);
    const audited = await auditOf(runId, 'run.rejected');
    expect(audited).toHaveLength(1);
    expect(audited[0]).toMatchObject({
      actor: 'sovereign:sovereign-a',
      detail: { key_id: env.sovereign.key.keyId, key_name: 'sovereign-a', reason: 'plan touches the wrong units', phase: 'cutplan' },
    });
    expect(await switchOnFor(runId)).toBe(false);
    await expectNoJobs(runId);
    // The run API and page show the rejection and its reason.
    const api = (await (await fetch(`${board.url}/runs/${runId}`)).json()) as { status: string; approvals: { decisions: { gate: string; reason: string | null }[] } };
    expect(api.status).toBe('rejected');
    expect(api.approvals.decisions.map((d) => [d.gate, d.reason])).toEqual([['EXEC', null], ['REJECT', 'plan touches the wrong units']]);

    // The same document again, or a second rejection: the run is no longer awaiting approval.
    const replay = await runCli(['approval', 'submit', file], cliEnv);
    expect(replay.code).toBe(1);
    expect(replay.stderr).toContain('[APPROVAL_RUN_NOT_AWAITING]');
    expect(await env.corpus()).toEqual(before);
    await expectCorpusFree();
  });
});

describe('a run that fails or expires', () => {
  it('failed: the failing phase keeps its real error; no later phase is waiting, delayed or a child-failed copy', async () => {
    const armingGate: PhaseProcessor<'approval-gate'> = async ({ run }) => {
      await armSwitch(env, run.run_id);
      return STAND_IN_GATE;
    };
    const failingBackup: PhaseProcessor<'backup'> = () => Promise.reject(new CutterError('BACKUP_TEST_FAULT', 'the test fails backup on purpose'));
    await env.startFleet({ 'approval-gate': armingGate, backup: failingBackup });
    const before = await env.corpus();
    const runId = await env.enqueue('live', { snapshot: enactingSnapshot(env.dir, 70, 71), approvalWindowS: 1 });
    const view = await env.waitForEnd(runId);
    expect(view).toMatchObject({ status: 'failed', failed_phase: 'backup', error: { code: 'BACKUP_TEST_FAULT' } });
    const jobs = await waitFor('the backup job to be failed', async () => {
      const seen = await runJobs(env.redis, env.cfg.CUTTER_QUEUE_PREFIX, runId);
      return seen.backup?.state === 'failed' ? seen : undefined;
    });
    expect(jobs.backup?.failedReason).toContain('BACKUP_TEST_FAULT: the test fails backup on purpose');
    expect(jobs.execute).toBeUndefined();
    expect(jobs.verify).toBeUndefined();
    for (const [phase, job] of Object.entries(jobs)) {
      expect(PENDING_STATES, phase).not.toContain(job.state);
      expect(job.failedReason ?? '', phase).not.toMatch(/^child .* failed$/);
    }
    expect(await switchOnFor(runId)).toBe(false);
    expect(await env.corpus()).toEqual(before);
    await expectCorpusFree();
  });

  it('expired: the gate job fails with APPROVAL_EXPIRED, and backup, execute and verify are gone', async () => {
    await env.startFleet();
    const runId = await env.enqueue('live', { snapshot: enactingSnapshot(env.dir, 80, 81), approvalWindowS: 1 });
    const view = await env.waitForEnd(runId);
    expect(view).toMatchObject({ status: 'expired', failed_phase: 'approval-gate', error: { code: 'APPROVAL_EXPIRED' } });
    const jobs = await waitFor('the gate job to be failed', async () => {
      const seen = await runJobs(env.redis, env.cfg.CUTTER_QUEUE_PREFIX, runId);
      return seen['approval-gate']?.state === 'failed' ? seen : undefined;
    });
    expect(jobs['approval-gate']?.failedReason).toContain('APPROVAL_EXPIRED');
    expect(Object.keys(jobs).sort()).toEqual(['approval-gate', 'cutplan', 'discover', 'grant-probe', 'precheck']);
    for (const phase of ['precheck', 'grant-probe', 'discover', 'cutplan'] as const) expect(jobs[phase]?.state).toBe('completed');
    await expectCorpusFree();
  });
});
