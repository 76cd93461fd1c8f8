import { executeRun } from '../../shared/execute/execution.js';
import { reachMoment } from '../../shared/jobs/moments.js';
import type { PhaseWorker } from '../context.js';

/** Applies the plan at most once, atomically, under the exec role (shared/execute/execution.ts); a dry run rehearses and rolls back. */
export const executeWorker: PhaseWorker<'execute'> = {
  process: ({ run }, deps) =>
    executeRun(deps.pool, run, {
      execRole: deps.cfg.CUTTER_EXEC_ROLE,
      sovereign: { keysSource: deps.cfg.SOVEREIGN_KEYS, quorum: deps.cfg.SOVEREIGN_QUORUM },
      log: deps.log,
      beforeCommit: () => reachMoment('execute.middle', run.run_id),
    }),
};
