import { copyFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Job, Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localSovereign, type LocalSovereign } from '../../shared/demo/sovereign.js';
import { jobId } from '../../shared/jobs/catalog.js';
import { getRun } from '../../shared/runs/store.js';
import { phaseRunner } from '../../workers/phase-runner.js';
import { PHASE_WORKERS } from '../../workers/processors.js';
import { waitFor } from '../support/poll.js';
import { createRunEnv, type RunEnv } from '../support/run-env.js';
import { waitForGate } from '../support/sovereign.js';

/**
 * The phase order is enforced, not assumed: anyone with Redis write access
 * can swap a job's data or add a job, so a phase job whose id is not
 * `${runId}.${phase}`, or whose run is not at the phase before it, does
 * nothing; it is audited as an anomaly on the run, and a run whose flow was
 * tampered with fails closed. Execute also needs, from PostgreSQL, a
 * completed, verified backup (shared/db/functions/apply_plan.sql).
 */

let env: RunEnv;
let sovereign: LocalSovereign;

beforeAll(async () => {
  env = await createRunEnv('phaseorder');
  sovereign = localSovereign(join(env.dir, 'sovereign'));
  for (const pem of readdirSync(sovereign.keysDir)) copyFileSync(join(sovereign.keysDir, pem), join(env.sovereign.dir, pem));
  await env.startFleet();
});
afterAll(async () => {
  await env.close();
});

async function effect(runId: string) {
  const { rows } = await env.db.pool.query<{ ledger: number; log: number; anomalies: number }>(
    `SELECT (SELECT count(*)::int FROM cutter_governance.execution_ledger WHERE run_id = $1) AS ledger,
            (SELECT count(*)::int FROM public.iu_lifecycle_log WHERE run_id = $1) AS log,
            (SELECT count(*)::int FROM cutter_governance.audit_event WHERE kind = 'phase.anomaly') AS anomalies`,
    [runId],
  );
  return rows[0];
}

describe('a phase job', () => {
  it('whose data was swapped to another (ended) run skips nothing: the backup does not run for either, the real run fails closed, nothing is applied', async () => {
    const ended = await env.enqueue('dry');
    expect((await env.waitForEnd(ended)).status).toBe('succeeded');
    const before = await env.corpus();
    const runId = await env.enqueue('live');
    await waitForGate(env, runId);
    // The insider's move: the real run's backup job now names the ended run.
    const backupQueue = new Queue('backup', { connection: env.redis, prefix: env.cfg.CUTTER_QUEUE_PREFIX });
    try {
      const job = await Job.fromId(backupQueue, jobId(runId, 'backup'));
      expect(job).toBeTruthy();
      await job?.updateData({ runId: ended });
    } finally {
      await backupQueue.close();
    }
    await sovereign.approve({ cfg: env.cfg, pool: env.db.pool, redis: env.redis }, runId);
    const view = await env.waitForEnd(runId);
    expect(view).toMatchObject({ status: 'failed', failed_phase: 'backup', error: { code: 'PHASE_ANOMALY' } });
    expect(view.phases.find((p) => p.phase === 'execute')?.state).toBe('pending');
    expect(await effect(runId)).toMatchObject({ ledger: 0, log: 0 });
    expect(await env.corpus()).toEqual(before);
    // The ended run is untouched, and the anomaly is on record for it.
    expect((await getRun(env.db.pool, ended))?.status).toBe('succeeded');
    const { rows } = await env.db.pool.query<{ run_id: string; detail: { job_id: string; job_owner: string } }>(
      `SELECT run_id, detail FROM cutter_governance.audit_event WHERE kind = 'phase.anomaly' ORDER BY seq DESC LIMIT 1`,
    );
    expect(rows[0]).toMatchObject({ run_id: ended, detail: { job_id: jobId(runId, 'backup'), job_owner: runId } });
    // Its report does not drop the backup: it says why there is none.
    expect((await getRun(env.db.pool, runId))?.report).toContain('## Backup\n\n- none: the backup phase failed (PHASE_ANOMALY)');
  });

  it('delivered before its turn does nothing and fails its run closed, audited', async () => {
    const before = await env.corpus();
    const runId = await env.enqueue('live');
    await waitForGate(env, runId);
    // execute for a run that has not been backed up (nor approved): its id is right, its turn has not come.
    const job = { id: jobId(runId, 'execute'), data: { runId }, attemptsMade: 0, opts: { attempts: 3 }, updateProgress: () => Promise.resolve() } as unknown as Job;
    const fleet = env.fleet;
    if (!fleet) throw new Error('no fleet');
    await expect(phaseRunner('execute', PHASE_WORKERS.execute, fleet.deps)(job)).rejects.toThrow(/PHASE_ANOMALY/);
    await waitFor('the run to end', async () => ((await getRun(env.db.pool, runId))?.status === 'failed' ? true : undefined));
    expect(await getRun(env.db.pool, runId)).toMatchObject({ error_code: 'PHASE_ANOMALY', failed_phase: 'execute' });
    expect(await effect(runId)).toMatchObject({ ledger: 0, log: 0 });
    expect(await env.corpus()).toEqual(before);
  });
});
