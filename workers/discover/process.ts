import { withTransaction } from '../../shared/db/pool.js';
import { CutterError } from '../../shared/errors.js';
import { judgeRevert, refuseRevert, revertSource } from '../../shared/revert/input.js';
import { recordSkipped } from '../../shared/revert/skipped.js';
import type { RunRow } from '../../shared/runs/store.js';
import { stageSnapshotWith } from '../../shared/snapshot/stage.js';
import { acquireCorpusLock } from '../../shared/targets/lock.js';
import { reachMoment } from '../../shared/jobs/moments.js';
import type { PhaseWorker } from '../context.js';

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
    const staged = await withTransaction(deps.pool, async (client) => {
      const args = { runId: run.run_id, corpus: run.corpus };
      if ('revertOf' in input) {
        const judged = await judgeRevert(client, input.revertOf);
        refuseRevert(input.revertOf, judged, input.skipDrifted);
        await recordSkipped(client, run.run_id, judged.drifted);
        return stageSnapshotWith(client, { ...args, source: revertSource(deps.pool, input.revertOf, judged.items - judged.drifted.length) });
      }
      const result = await stageSnapshotWith(client, { ...args, path: input.path });
      if (result.sha256 !== input.sha256) {
        throw new CutterError('SNAPSHOT_CHANGED', `snapshot ${input.path} changed after the run was enqueued (sha256 ${result.sha256} ≠ ${input.sha256})`);
      }
      return result;
    });
    await progress({ records: staged.records, bytes: staged.bytes });
    return { records: staged.records, bytes: staged.bytes, sha256: staged.sha256 };
  },
};

/** The run's input as enqueued: a snapshot file and its sha256 then, or the run it reverts. */
function inputOf(run: RunRow): { path: string; sha256: string } | { revertOf: string; skipDrifted: boolean } {
  if (run.revert_of !== null) return { revertOf: run.revert_of, skipDrifted: run.revert_skip_drifted };
  if (!run.snapshot_path || !run.snapshot_sha256) throw new CutterError('SNAPSHOT_NOT_RECORDED', `run ${run.run_id} has no snapshot recorded`);
  return { path: run.snapshot_path, sha256: run.snapshot_sha256 };
}
