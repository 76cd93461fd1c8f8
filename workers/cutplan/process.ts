import { appendAudit } from '../../shared/audit/append.js';
import { withTransaction } from '../../shared/db/pool.js';
import { buildPlan } from '../../shared/plan/build.js';
import { setRunStatus } from '../../shared/runs/store.js';
import { requireTarget } from '../../shared/targets/registry.js';
import { reachMoment } from '../../shared/jobs/moments.js';
import type { PhaseWorker } from '../context.js';

/** Freezes the change set and its hash. */
export const cutplanWorker: PhaseWorker<'cutplan'> = {
  process: async ({ run }, deps) => {
    const target = await requireTarget(deps.pool, run.target);
    const plan = await withTransaction(deps.pool, (client) => buildPlan(client, { runId: run.run_id, target }));
    await reachMoment('cutplan.middle', run.run_id); // the plan stored, the status not yet awaiting_approval
    if (run.mode === 'live') {
      // The audit row commits with the status, once (a retried cutplan finds it set): it announces the pause (docs/notifications.md).
      await withTransaction(deps.pool, async (tx) => {
        if (await setRunStatus(tx, run.run_id, 'awaiting_approval')) await appendAudit(tx, { actor: 'worker', kind: 'run.awaiting_approval', runId: run.run_id, detail: { plan_sha256: plan.plan_sha256, unit_count: plan.unit_count } });
      });
    }
    return plan;
  },
};
