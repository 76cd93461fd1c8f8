import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FlowProducer, Queue, Worker, type Job } from 'bullmq';
import { pino } from 'pino';
import { startBoardServer } from '../../board/server.js';
import { serialiseApprovalDocument } from '../../shared/approval/document.js';
import { buildDocument, generateSovereignKey, readPrivateKey, signDocument } from '../../shared/approval/sign.js';
import type { Pool } from '../../shared/db/pool.js';
import { createRedis } from '../../shared/redis.js';
import { startFleet } from '../../workers/fleet.js';
import { connection, post, throughput, untilDelayed, WINDOW_MS, type Harness, type Side } from '../support/approval-harness.js';

/**
 * cutter's side of the approval figure, through production entry points
 * only: the board's server takes real signed envelopes, a real worker fleet
 * serves the approval gate. The bench's own bare workers stand in for the
 * phases around it (cutplan completes at once; execute marks when it becomes
 * active), so the bench depends on nothing inside the approval path, which
 * may be rewritten freely.
 */

const silent = pino({ level: 'silent' });

/** A run paused at SG_1 as cutplan leaves it: run row, change set, completed cutplan phase. */
async function insertPausedRun(pool: Pool, runId: string, planSha256: string): Promise<void> {
  await pool.query(
    `INSERT INTO cutter_governance.run (run_id, target, corpus, mode, operator, approval_window_s, status)
     VALUES ($1, 'icx-work', 'ICX-WORK', 'live', 'bench-operator', 3600, 'awaiting_approval')`,
    [runId],
  );
  await pool.query(
    `INSERT INTO cutter_governance.cut_change_set (run_id, target, corpus, plan_sha256, unit_count, by_op, by_transition)
     VALUES ($1, 'icx-work', 'ICX-WORK', $2, 0, '{}', '{}')`,
    [runId, planSha256],
  );
  await pool.query(
    `INSERT INTO cutter_governance.run_phase (run_id, phase, state, finished_at) VALUES ($1, 'cutplan', 'completed', now())`,
    [runId],
  );
}

/**
 * Opens cutter's side: the board, a fleet serving only the approval gate,
 * and the stand-in workers. Each round pauses a run at SG_1, posts its SG_1,
 * then times the EXEC grant's POST to the execute job becoming active.
 */
export async function openCutter(h: Harness): Promise<Side> {
  const key = generateSovereignKey();
  mkdirSync(join(h.dir, 'public'), { recursive: true });
  writeFileSync(join(h.dir, 'public', 'bench-sovereign.pem'), key.publicPem);
  const privateKey = readPrivateKey(key.privatePem, 'bench key');
  const other = readPrivateKey(generateSovereignKey().privatePem, 'other key');
  const board = await startBoardServer({
    cfg: h.cfg,
    log: silent,
    port: 0,
    host: '127.0.0.1',
    options: { approvalRateLimit: { windowMs: 60_000, limit: 1_000_000 }, sweepIntervalMs: 3_600_000 },
  });
  // The reconciler makes one pass at start and then sleeps past the figure: the bench's hand-made
  // runs have no jobs for the phases it skips, which the reconciler would rightly judge lost.
  const fleet = await startFleet({ cfg: h.cfg, log: silent, phases: ['approval-gate'], concurrency: 1, reconcile: { intervalMs: 3_600_000 } });
  const redis = createRedis(h.cfg.REDIS_URL, 'worker');
  const gate = new Queue('approval-gate', { connection: redis, prefix: h.prefix });
  const active = new Map<string, (t: number) => void>();
  const cutplan = new Worker('cutplan', () => Promise.resolve({}), { connection: connection(h.cfg), prefix: h.prefix });
  const execute = new Worker(
    'execute',
    async (job: Job<{ runId: string }>) => {
      active.get(job.data.runId)?.(performance.now());
      // Ends the run and the switch, so the next run's EXEC grant finds the switch free.
      await h.pool.query(`UPDATE cutter_governance.run SET status = 'succeeded' WHERE run_id = $1`, [job.data.runId]);
      await h.pool.query(`UPDATE cutter_governance.execution_switch SET enabled = false, run_id = NULL, expires_at = NULL, changed_by = 'bench'`);
      return {};
    },
    { connection: connection(h.cfg), prefix: h.prefix },
  );
  await Promise.all([cutplan.waitUntilReady(), execute.waitUntilReady()]);
  const flows = new FlowProducer({ connection: redis, prefix: h.prefix });
  const measured: Side['measured'] = { ms: [], answered: [] };
  const pausedRun = async (runId: string) => {
    const plan = randomBytes(32).toString('hex');
    await insertPausedRun(h.pool, runId, plan);
    return { runId, target: 'icx-work', planSha256: plan, maxUnits: 1, transitions: ['draft->enacted' as const] };
  };
  let i = 0;
  return {
    measured,
    round: async () => {
      const runId = `bench-${process.pid}-${i++}`;
      const req = await pausedRun(runId);
      const executeDone = new Promise<void>((resolve) => execute.once('completed', () => resolve()));
      await flows.add({
        name: 'execute', queueName: 'execute', data: { runId }, opts: { jobId: `${runId}.execute` },
        children: [{
          name: 'approval-gate', queueName: 'approval-gate', data: { runId }, opts: { jobId: `${runId}.approval-gate`, delay: WINDOW_MS, failParentOnFailure: true },
          children: [{ name: 'cutplan', queueName: 'cutplan', data: { runId }, opts: { jobId: `${runId}.cutplan` } }],
        }],
      });
      await untilDelayed(gate, `${runId}.approval-gate`);
      const sign = (g: 'SG_1' | 'EXEC') => JSON.stringify(signDocument(serialiseApprovalDocument(buildDocument({ ...req, gate: g }, { ttlS: 3600 })), privateKey));
      const url = `${board.url}/runs/${runId}/approvals`;
      if ((await post(url, sign('SG_1'))) !== 201) throw new Error('SG_1 refused');
      const exec = sign('EXEC');
      const became = new Promise<number>((resolve) => active.set(runId, resolve));
      const t0 = performance.now();
      if ((await post(url, exec)) !== 201) throw new Error('EXEC refused');
      measured.answered.push(performance.now() - t0);
      measured.ms.push((await became) - t0);
      await executeDone;
    },
    // Invalid: a signature by another key over a well-formed document for a paused run.
    refusedPerS: async (count) => {
      const req = await pausedRun(`bench-${process.pid}-refuse`);
      const doc = serialiseApprovalDocument(buildDocument({ ...req, gate: 'SG_1' }, { ttlS: 3600 }));
      const forged = JSON.stringify({ ...signDocument(doc, other), key_id: key.keyId });
      return throughput(`${board.url}/runs/${req.runId}/approvals`, forged, count, 16, 403);
    },
    close: async () => {
      await flows.close();
      await Promise.all([cutplan.close(), execute.close()]);
      await fleet.close();
      await gate.close();
      redis.disconnect();
      await board.close();
    },
  };
}
