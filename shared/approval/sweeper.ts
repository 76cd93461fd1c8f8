import { loadGateRun } from './binding.js';
import { releaseIfApproved, type ApprovalDeps } from './submit.js';

/**
 * The second path to a release. An approval stored in the moment before the
 * gate became delayed, or by a board that crashed before promoting, is
 * still in Postgres; this loop finds runs awaiting approval whose approvals
 * are complete and promotes their gate. Promoting twice is harmless, and the
 * gate decides from Postgres anyway.
 */

export interface Sweeper {
  /** Stops the loop and waits for a sweep in progress. */
  stop: () => Promise<void>;
  /** One sweep now; resolves with the run ids it released. */
  sweepOnce: () => Promise<string[]>;
}

/** Starts sweeping every intervalMs until stop(). */
export function startReleaseSweeper(deps: ApprovalDeps, intervalMs = 2000): Sweeper {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> = Promise.resolve();
  let stopped = false;

  const sweepOnce = async (): Promise<string[]> => {
    const { rows } = await deps.pool.query<{ run_id: string }>(
      `SELECT r.run_id FROM cutter_governance.run r
        WHERE r.status = 'awaiting_approval' AND r.mode = 'live'
          AND EXISTS (SELECT 1 FROM cutter_governance.review_decision d
                       WHERE d.run_id = r.run_id AND d.gate = 'EXEC' AND d.consumed_utc IS NULL)
        ORDER BY r.created_at`,
    );
    const released: string[] = [];
    for (const { run_id: runId } of rows) {
      const run = await loadGateRun(deps.pool, runId);
      if (!run) continue;
      const { outcome } = await releaseIfApproved(deps, run, deps.now?.() ?? new Date(), 0);
      if (outcome === 'released') released.push(runId);
    }
    if (released.length) deps.log.info({ runs: released }, 'sweeper released approved gates');
    return released;
  };

  const tick = () => {
    running = sweepOnce()
      .catch((err: unknown) => deps.log.error({ err }, 'release sweep failed; retrying on the next tick'))
      .finally(() => {
        if (!stopped) timer = setTimeout(tick, intervalMs);
      });
  };
  timer = setTimeout(tick, intervalMs);

  return {
    sweepOnce,
    stop: async () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}
