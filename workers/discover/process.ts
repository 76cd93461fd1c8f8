import { withTransaction } from '../../shared/db/pool.js';
import { CutterError } from '../../shared/errors.js';
import { computeRevertInput } from '../../shared/revert/input.js';
import { refuseRevert } from '../../shared/revert/judge.js';
import { recordSkipped } from '../../shared/runs/revert-skipped.js';
import type { RunRow } from '../../shared/runs/store.js';
import { stageSnapshotWith, type StageResult } from '../../shared/snapshot/stage.js';
import { acquireCorpusLock } from '../../shared/targets/lock.js';
import { reachMoment } from '../../shared/jobs/moments.js';
import type { PhaseDeps, PhaseWorker } from '../context.js';

/**
 * Stages the run's input. For a run of a snapshot, the file the operator
 * enqueued, which must still be the one whose hash was recorded then:
 * staging hashes what it reads, and a different hash rolls the staging back,
 * so a swapped file never reaches the plan. For a revert, the inverse of the
 * run it reverts, computed now from that run's items, the unit versions and
 * the lifecycle log (shared/revert/input.ts); a unit changed since that run
 * fails the revert (REVERT_DRIFTED), or with --skip-drifted is left out and
 * recorded as skipped in the same commit. Both are staged by the same code.
 */
export const discoverWorker: PhaseWorker<'discover'> = {
  process: async ({ run, progress }, deps) => {
    const input = inputOf(run);
    await acquireCorpusLock(deps.pool, { corpus: run.corpus, runId: run.run_id });
    await reachMoment('discover.middle', run.run_id); // the lock held, nothing staged yet
    const staged = 'revertOf' in input ? await stageRevert(deps, run, input) : await stageFile(deps, run, input);
    await progress({ records: staged.records, bytes: staged.bytes });
    return { records: staged.records, bytes: staged.bytes, sha256: staged.sha256 };
  },
};

/** The snapshot file, which must hash to what it did at enqueue. */
async function stageFile(deps: PhaseDeps, run: RunRow, input: { path: string; sha256: string }): Promise<StageResult> {
  return withTransaction(deps.pool, async (client) => {
    const result = await stageSnapshotWith(client, { runId: run.run_id, corpus: run.corpus, path: input.path });
    if (result.sha256 !== input.sha256) {
      throw new CutterError('SNAPSHOT_CHANGED', `snapshot ${input.path} changed after the run was enqueued (sha256 ${result.sha256} ≠ ${input.sha256})`);
    }
    return result;
  });
}

/**
 * A revert's input, computed now and staged; drifted units refuse it, or
 * with --skip-drifted are recorded as skipped in the staging's commit.
 */
async function stageRevert(deps: PhaseDeps, run: RunRow, input: { revertOf: string; skipDrifted: boolean }): Promise<StageResult> {
  const computed = await computeRevertInput(deps.pool, input.revertOf, run.corpus);
  try {
    refuseRevert(input.revertOf, computed.judgement, input.skipDrifted);
    return await withTransaction(deps.pool, async (client) => {
      await recordSkipped(client, run.run_id, computed.judgement.drifted);
      return stageSnapshotWith(client, { runId: run.run_id, corpus: run.corpus, source: computed.source });
    });
  } finally {
    await computed.close();
  }
}

/** The run's input as enqueued: a snapshot file and its sha256 then, or the run it reverts. */
function inputOf(run: RunRow): { path: string; sha256: string } | { revertOf: string; skipDrifted: boolean } {
  if (run.revert_of !== null) return { revertOf: run.revert_of, skipDrifted: run.revert_skip_drifted };
  if (!run.snapshot_path || !run.snapshot_sha256) throw new CutterError('SNAPSHOT_NOT_RECORDED', `run ${run.run_id} has no snapshot recorded`);
  return { path: run.snapshot_path, sha256: run.snapshot_sha256 };
}
