import { CutterError } from '../../shared/errors.js';
import { grantProbeError, probeGrants } from '../../shared/grants/probe.js';
import { reachMoment } from '../../shared/jobs/moments.js';
import type { PhaseWorker } from '../context.js';

/** The exec role holds exactly the deployment matrix, or the run stops naming each failing row. */
export const grantProbeWorker: PhaseWorker<'grant-probe'> = {
  process: async ({ run }, deps) => {
    const result = await probeGrants(deps.pool, deps.cfg.CUTTER_EXEC_ROLE);
    await reachMoment('grant-probe.middle', run.run_id); // probed (read-only), not yet judged
    if (!result.ok) throw grantProbeError(result) ?? new CutterError('GRANTS_MISSING', 'the grant probe failed');
    return { role: result.role, rows: result.rows.length, all_hold: true };
  },
};
