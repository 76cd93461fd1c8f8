import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBoardServer, type BoardServer } from '../../board/server.js';
import { failRun } from '../../shared/runs/store.js';
import { runAppliedLive, trustLocalSovereign } from '../support/applied-run.js';
import { runCli } from '../support/cli.js';
import { insertPausedRun } from '../support/paused-run.js';
import { createRunEnv, type RunEnv } from '../support/run-env.js';
import { approvalFor, postApproval } from '../support/sovereign.js';

/**
 * A change set says how it ended: applied by its run, rehearsed by a dry
 * run, or the way its run ended before applying it (failed, expired,
 * cancelled, rejected); never left `planned` once its run is over.
 */

let env: RunEnv;
let board: BoardServer;
let sovereign: ReturnType<typeof trustLocalSovereign>;
beforeAll(async () => {
  env = await createRunEnv('csends');
  sovereign = trustLocalSovereign(env);
  await env.startFleet();
  board = await startBoardServer({ cfg: env.cfg, log: pino({ level: 'silent' }), port: 0, options: { sweepIntervalMs: 60_000 } });
}, 120_000);
afterAll(async () => {
  await board?.close();
  await env?.close();
});

async function changeSetStatus(runId: string): Promise<string | undefined> {
  const { rows } = await env.db.pool.query<{ status: string }>('SELECT status FROM cutter_governance.cut_change_set WHERE run_id = $1', [runId]);
  return rows[0]?.status;
}

describe('how a change set ended', () => {
  it('applied, rehearsed, failed, expired, cancelled, rejected', async () => {
    const applied = await runAppliedLive(env, sovereign);
    expect(await changeSetStatus(applied.runId)).toBe('applied');

    const dry = await env.enqueue('dry');
    expect((await env.waitForEnd(dry)).status).toBe('succeeded');
    expect(await changeSetStatus(dry)).toBe('rehearsed');

    // Runs paused at the gate, each ended the way the system ends runs.
    const failed = await insertPausedRun(env.db.pool);
    await failRun(env.db.pool, { runId: failed.runId, phase: 'approval-gate', code: 'TEST_FAULT', message: 'ended by the test' });
    const expired = await insertPausedRun(env.db.pool);
    await failRun(env.db.pool, { runId: expired.runId, phase: 'approval-gate', code: 'APPROVAL_EXPIRED', message: 'window passed', status: 'expired' });
    const cancelled = await insertPausedRun(env.db.pool);
    const cancel = await runCli(['cancel', cancelled.runId, '--reason', 'not today'], env.env);
    expect(cancel.code, cancel.stderr).toBe(0);
    const rejected = await insertPausedRun(env.db.pool);
    const no = await postApproval(board.url, rejected.runId, approvalFor(rejected, 'REJECT', env.sovereign.key));
    expect(no.status, JSON.stringify(no.json)).toBe(201);

    expect(await changeSetStatus(failed.runId)).toBe('failed');
    expect(await changeSetStatus(expired.runId)).toBe('expired');
    expect(await changeSetStatus(cancelled.runId)).toBe('cancelled');
    expect(await changeSetStatus(rejected.runId)).toBe('rejected');
    const { rows } = await env.db.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM cutter_governance.cut_change_set c JOIN cutter_governance.run r USING (run_id)
        WHERE c.status = 'planned' AND NOT cutter_governance.run_in_flight(r.status)`,
    );
    expect(rows[0]?.n, 'change sets still planned after their run ended').toBe(0);
  }, 180_000);
});
