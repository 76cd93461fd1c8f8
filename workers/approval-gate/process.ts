import { GATE_READS, gateReadsFromClaim } from '../../shared/approval/binding.js';
import { decideGate, openGate } from '../../shared/approval/gate.js';
import { loadTrustedKeys } from '../../shared/approval/keys.js';
import { reachMoment } from '../../shared/jobs/moments.js';
import type { PhaseWorker } from '../context.js';

/**
 * SG_1 (shared/approval/gate.ts): decides on the run and its unconsumed
 * approvals as its claim read them under the run's lock; the commit that
 * records the phase completed consumes the approvals that opened it.
 */
export const approvalGateWorker: PhaseWorker<'approval-gate'> = {
  claimReads: GATE_READS,
  process: async ({ run, reads }, deps) => {
    const result = await decideGate(deps.pool, gateReadsFromClaim(run, reads), {
      // Read on every wake, so a key removed from SOVEREIGN_KEYS stops counting at once.
      keys: await loadTrustedKeys(deps.cfg.SOVEREIGN_KEYS),
      quorum: deps.cfg.SOVEREIGN_QUORUM,
      now: new Date(),
    });
    await reachMoment('approval-gate.middle', run.run_id); // judged, nothing consumed yet
    return result;
  },
  complete: (tx, run, result) => openGate(tx, run.run_id, result),
};
