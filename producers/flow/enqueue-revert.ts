import type { RunMode } from '../../shared/jobs/catalog.js';
import { judgeRevert } from '../../shared/revert/input.js';
import { refuseRevert, requireRevertible, type DriftedUnit } from '../../shared/revert/judge.js';
import { newRunId } from '../../shared/runs/store.js';
import { requireC3 } from '../../shared/targets/criteria.js';
import { requireTarget } from '../../shared/targets/registry.js';
import { addRunFlow, insertRunAndLock, type EnqueueDeps } from './enqueue.js';

export interface RevertRequest {
  /** The live run that succeeded whose applied plan the new run inverts. */
  revertOf: string;
  mode: RunMode;
  /** Leave out the units changed since that run (else they refuse the revert). */
  skipDrifted: boolean;
  operator: string;
  approvalWindowS: number;
}

/**
 * `cutter revert`: a new run whose input is the inverse of what an applied
 * run changed (docs/undo.md). Refused before anything is written when that
 * run is no live run that succeeded (REVERT_NOT_REVERTIBLE), when a unit it
 * changed has changed since and --skip-drifted was not given
 * (REVERT_DRIFTED), or when nothing is left to revert; otherwise enqueued
 * exactly as a run of a snapshot is (run row, corpus lock, audit, flow).
 * Discover computes the input again when it runs.
 */
export async function enqueueRevert(deps: EnqueueDeps, req: RevertRequest): Promise<{ runId: string; drifted: DriftedUnit[]; items: number }> {
  const original = await requireRevertible(deps.pool, req.revertOf);
  const target = await requireTarget(deps.pool, original.target);
  await requireC3(deps.pool, target, req.mode);
  const judged = await judgeRevert(deps.pool, req.revertOf, original.corpus);
  refuseRevert(req.revertOf, judged, req.skipDrifted);
  const runId = newRunId();
  await insertRunAndLock(
    deps.pool,
    {
      runId,
      target: target.name,
      corpus: target.corpus,
      mode: req.mode,
      operator: req.operator,
      snapshotPath: null,
      snapshotSha256: null,
      revert: { of: req.revertOf, skipDrifted: req.skipDrifted },
      idempotencyKey: null,
      approvalWindowS: req.approvalWindowS,
    },
    { revert_of: req.revertOf, skip_drifted: req.skipDrifted, drifted: judged.drifted.length },
  );
  await addRunFlow(deps, { runId, mode: req.mode, approvalWindowS: req.approvalWindowS, operator: req.operator });
  return { runId, drifted: judged.drifted, items: judged.items };
}
