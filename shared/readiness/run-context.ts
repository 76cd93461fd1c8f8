import { loadGateRun, type GateRun } from '../approval/binding.js';
import type { Pool } from '../db/pool.js';
import type { PlanSummary } from '../jobs/results.js';
import { storedSummary } from '../plan/build.js';
import { getPhases, getRun, type PhaseRow, type RunRow } from '../runs/store.js';
import { readOnly } from './read-only.js';

/** A run named with --run, as the checks need it, read once (read-only). */
export interface RunContext {
  run: RunRow;
  phases: PhaseRow[];
  plan: PlanSummary | null;
  gate: GateRun;
}

/** The run and what hangs off it, or null when there is no such run. */
export async function loadRunContext(pool: Pool, runId: string): Promise<RunContext | null> {
  return readOnly(pool, async (client) => {
    const run = await getRun(client, runId);
    if (!run) return null;
    const gate = await loadGateRun(client, runId);
    if (!gate) return null;
    return { run, phases: await getPhases(client, runId), plan: await storedSummary(client, runId), gate };
  });
}

/** True once the phase has completed for the run. */
export function phaseDone(ctx: RunContext, phase: string): boolean {
  return ctx.phases.some((p) => p.phase === phase && p.state === 'completed');
}
