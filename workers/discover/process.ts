import { withTransaction } from '../../shared/db/pool.js';
import { CutterError } from '../../shared/errors.js';
import { stageSnapshotWith } from '../../shared/snapshot/stage.js';
import { acquireCorpusLock } from '../../shared/targets/lock.js';
import { reachMoment } from '../../shared/jobs/moments.js';
import type { PhaseWorker } from '../context.js';

/**
 * Stages the snapshot the operator enqueued. The file must still be the one
 * whose hash was recorded then: staging hashes what it reads, and a
 * different hash rolls the staging back, so a swapped file never reaches the plan.
 */
export const discoverWorker: PhaseWorker<'discover'> = {
  process: async ({ run, progress }, deps) => {
    const path = run.snapshot_path;
    const expected = run.snapshot_sha256;
    if (!path || !expected) throw new CutterError('SNAPSHOT_NOT_RECORDED', `run ${run.run_id} has no snapshot recorded`);
    await acquireCorpusLock(deps.pool, { corpus: run.corpus, runId: run.run_id });
    await reachMoment('discover.middle', run.run_id); // the lock held, nothing staged yet
    const staged = await withTransaction(deps.pool, async (client) => {
      const result = await stageSnapshotWith(client, { runId: run.run_id, corpus: run.corpus, path });
      if (result.sha256 !== expected) {
        throw new CutterError('SNAPSHOT_CHANGED', `snapshot ${path} changed after the run was enqueued (sha256 ${result.sha256} ≠ ${expected})`);
      }
      return result;
    });
    await progress({ records: staged.records, bytes: staged.bytes });
    return { records: staged.records, bytes: staged.bytes, sha256: staged.sha256 };
  },
};
