import { decideGate, gateSummary } from '../../shared/approval/gate.js';
import { gateReadsFromClaim } from '../../shared/approval/binding.js';
import { loadTrustedKeys } from '../../shared/approval/keys.js';
import { faultPoint } from '../../shared/faults.js';
import { PHASE_RECORDED, type PhaseProcessor } from '../context.js';

/**
 * SG_1. The job wakes when its delay (the approval window) ends or when it is
 * promoted: by the approval endpoint after a valid SG_1 quorum and EXEC grant
 * were stored, or by anyone else with access to Redis. It decides from
 * Postgres alone (shared/approval/gate.ts): valid unconsumed approvals are
 * consumed and the run goes on; otherwise the run ends expired (window over)
 * or failed closed and audited (released by hand).
 */
export const processApprovalGate: PhaseProcessor = async ({ run, gateReads }, deps) => {
  // Read on every wake, so a key removed from SOVEREIGN_KEYS stops counting at once.
  const keys = loadTrustedKeys(deps.cfg.SOVEREIGN_KEYS);
  const opened = await decideGate(
    { pool: deps.pool, keys, quorum: deps.cfg.SOVEREIGN_QUORUM, now: new Date(), beforeConsume: () => faultPoint(deps.cfg, 'approval-gate.middle') },
    gateReadsFromClaim(run, gateReads),
  );
  const summary = gateSummary(opened, deps.cfg.SOVEREIGN_QUORUM);
  // Consuming the approvals recorded the phase completed in the same commit.
  return opened.consumedNow ? { ...summary, [PHASE_RECORDED]: true } : summary;
};
