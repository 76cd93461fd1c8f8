import type { Config } from '../config.js';
import type { Pool } from '../db/pool.js';
import { withExecRole } from '../grants/exec-role.js';
import { inFlight } from '../runs/status.js';
import { readOnly } from './read-only.js';
import type { RunContext } from './run-context.js';
import { blocker, messageOf, type BlockerDraft, type PackageResult } from './types.js';

/**
 * The kill switch, shown without touching it: its row and execution_enabled()
 * as the application's login, then the very call execute makes, made as the
 * exec role (SET LOCAL ROLE inside the read-only transaction; SET is not a
 * write). That call answering false is what refuses a live execute.
 */

export const KILL_SWITCH = 'kill switch';

export interface SwitchState {
  /** execution_enabled() with no argument: on for any run at all. */
  onAtAll: boolean;
  /** execution_enabled(run) for the named run; false without one. */
  onForRun: boolean;
  holder: { runId: string; status: string | null; expiresAt: Date | null } | null;
}

export interface KillSwitchResult {
  result: PackageResult;
  state: SwitchState | null;
}

/** Reads the switch and execute's view of it; never changes it. */
export async function checkKillSwitch(cfg: Config, pool: Pool, run: RunContext | null): Promise<KillSwitchResult> {
  const role = cfg.CUTTER_EXEC_ROLE;
  const runId = run?.run.run_id ?? null;
  try {
    return await readOnly(pool, async (client) => {
      const { rows } = await client.query<{ any: boolean; mine: boolean; run_id: string | null; status: string | null; expires_at: Date | null }>(
        `SELECT cutter_governance.execution_enabled() AS any, coalesce(cutter_governance.execution_enabled($1), false) AS mine,
                s.run_id, r.status, s.expires_at
           FROM (SELECT 1) one
           LEFT JOIN cutter_governance.execution_switch s ON s.enabled AND s.expires_at > now()
           LEFT JOIN cutter_governance.run r ON r.run_id = s.run_id`,
        [runId],
      );
      const r = rows[0];
      const state: SwitchState = {
        onAtAll: r?.any ?? false,
        onForRun: runId !== null && (r?.mine ?? false),
        holder: r?.run_id ? { runId: r.run_id, status: r.status, expiresAt: r.expires_at } : null,
      };
      // What execute itself would read, as the role it runs as.
      let asExec: string;
      try {
        const seen = await withExecRole(client, role, async () => {
          const q = await client.query<{ on: boolean }>('SELECT cutter_governance.execution_enabled($1) AS on', [runId]);
          return q.rows[0]?.on ?? false;
        });
        asExec = `as ${role} (SET LOCAL ROLE in the read-only transaction) execution_enabled(${runId ?? ''}) = ${String(seen)}`;
      } catch (err) {
        asExec = `could not look as ${role}: ${messageOf(err)} (see grant probe)`;
      }
      return { result: describe(state, runId, asExec), state };
    });
  } catch (err) {
    return { result: { name: KILL_SWITCH, runnable: 'NO', verified: 'not checked', checks: [], blockers: [], failure: `kill switch: ${messageOf(err)}` }, state: null };
  }
}

function describe(state: SwitchState, runId: string | null, asExec: string): PackageResult {
  const blockers: BlockerDraft[] = [];
  const checks = [`execution_enabled() = ${String(state.onAtAll)}${runId ? `, execution_enabled(${runId}) = ${String(state.onForRun)}` : ''}`, asExec];
  let verified: string;
  const holder = state.holder;
  if (state.onForRun && holder) {
    verified = `on for run ${runId ?? ''} alone until ${holder.expiresAt?.toISOString() ?? '?'}: execute may proceed for that run; shown without changing it`;
  } else if (holder && holder.runId !== runId) {
    const active = inFlight(holder.status ?? '');
    verified = `on for another run, ${holder.runId} (${holder.status ?? 'unknown'}), until ${holder.expiresAt?.toISOString() ?? '?'}; a live execute of ${runId ?? 'any other run'} is refused with KILL_SWITCH_OFF; shown without changing it`;
    if (active) {
      blockers.push(
        blocker(
          'operator',
          `the kill switch free of run ${holder.runId}: that run ended, or its EXEC grant expired (${holder.expiresAt?.toISOString() ?? '?'})`,
          `the switch is held by active run ${holder.runId}; an EXEC grant for another run is refused (APPROVAL_SWITCH_BUSY) until then`,
        ),
      );
    }
  } else {
    verified = `off: a live execute is refused with KILL_SWITCH_OFF before it writes (execute reads execution_enabled(run) as the exec role, and it answers false); shown without changing it`;
  }
  return { name: KILL_SWITCH, runnable: 'YES', verified, checks, blockers, failure: null };
}
