import { decideGate, gateSummary, openIfApproved, type GateDeps } from '../../shared/approval/gate.js';
import { gateReadsFromClaim } from '../../shared/approval/binding.js';
import { loadTrustedKeys } from '../../shared/approval/keys.js';
import { errorCode } from '../../shared/errors.js';
import { reachMoment } from '../../shared/jobs/moments.js';
import { claimPhase } from '../../shared/runs/store.js';
import { PHASE_RECORDED, type PhaseProcessor } from '../context.js';

/**
 * SG_1. The job wakes when its delay (the approval window) ends or when it is
 * promoted: by the approval endpoint after a valid SG_1 quorum and EXEC grant
 * were stored, or by anyone else with access to Redis. It decides from
 * Postgres alone (shared/approval/gate.ts): valid unconsumed approvals are
 * consumed and the run goes on; otherwise the run ends expired (window over)
 * or failed closed and audited (released by hand).
 *
 * The runner only read the run and its approvals (peekGate), or took that
 * read as the releasing endpoint handed it over (judged: then the opening
 * checks, under the run's lock, that Postgres still holds exactly it). When
 * they open the gate, which is every release by the endpoint, the commit
 * that consumes them also claims the phase. Any other decision is taken on what the gate
 * reads after claiming the phase under the run's lock, when no approval can
 * still be on its way in.
 */
export const processApprovalGate: PhaseProcessor = async ({ run, gateReads, readAt, judged }, deps) => {
  const gate: GateDeps = {
    pool: deps.pool,
    // Read on every wake, so a key removed from SOVEREIGN_KEYS stops counting at once.
    keys: loadTrustedKeys(deps.cfg.SOVEREIGN_KEYS),
    quorum: deps.cfg.SOVEREIGN_QUORUM,
    now: new Date(),
    beforeConsume: () => reachMoment('approval-gate.middle', run.run_id),
  };
  const reads = () => gateReadsFromClaim(run, gateReads);
  let opened = await (judged === undefined
    ? openIfApproved(gate, reads(), { claimed: false, startedAt: readAt })
    : // A handoff is only a shortcut (one taken before cutplan's end holds no window yet, for one):
      // whatever fails in judging it, the gate reads Postgres itself below.
      Promise.resolve()
        .then(() => openIfApproved(gate, reads(), { claimed: false, startedAt: readAt, judged }))
        .catch((err: unknown) => {
          deps.log.warn({ run_id: run.run_id, code: errorCode(err) }, 'approval-gate: handoff not usable; reading Postgres');
          return null;
        }));
  if (!opened) {
    const claimed = await claimPhase(deps.pool, run.run_id, 'approval-gate');
    if (!claimed?.started) return { skipped: `run already ${claimed?.run.status ?? 'gone'}` };
    opened = await decideGate(gate, gateReadsFromClaim(claimed.run, claimed.gateReads));
  }
  const summary = gateSummary(opened, deps.cfg.SOVEREIGN_QUORUM);
  // Opening the gate recorded the phase completed in the same commit.
  return opened.consumedNow ? { ...summary, [PHASE_RECORDED]: true } : summary;
};
