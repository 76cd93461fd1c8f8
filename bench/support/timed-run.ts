import { enqueueRun } from '../../producers/flow/enqueue.js';
import { phaseSeconds, untilStatus, type LiveFleet } from './live-run.js';

/**
 * A live run timed whole, as a user waits for it, minus the wait for its
 * signatures: enqueue → paused at SG_1, plus the approval submitted →
 * succeeded. The approval is SG_1 + EXEC signed by the bench's local
 * sovereign and stored through the real submit path.
 */

export interface TimedRun {
  runId: string;
  /** Enqueue → paused at SG_1, plus approval submitted → succeeded. */
  seconds: number;
  /** Each phase's run_phase duration. */
  phases: Record<string, number>;
}

/** The phases the notes list, in order (the gate's wake is left out: it is the wait for signatures). */
export const PHASES_TIMED = ['precheck', 'grant-probe', 'discover', 'cutplan', 'backup', 'execute', 'verify'];

/** Times a live run from its enqueue to its end, leaving out the time it waits for (and takes to get) its signatures. */
export async function timeLiveRun(live: LiveFleet, enqueue: () => Promise<string>, expectedLogRows: number): Promise<TimedRun> {
  const t0 = process.hrtime.bigint();
  const runId = await enqueue();
  const paused = await untilStatus(live.pool, runId, ['awaiting_approval', 'failed', 'expired']);
  const t1 = process.hrtime.bigint();
  if (paused !== 'awaiting_approval') throw new Error(`bench run ${runId} ended ${paused} before approval${await errorOf(live, runId)}`);
  await live.sovereign.approve({ cfg: live.cfg, pool: live.pool, redis: live.redis }, runId);
  const t2 = process.hrtime.bigint();
  const ended = await untilStatus(live.pool, runId, ['succeeded', 'failed', 'expired']);
  const t3 = process.hrtime.bigint();
  if (ended !== 'succeeded') throw new Error(`bench run ${runId} ended ${ended}${await errorOf(live, runId)}`);
  const log = await live.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM public.iu_lifecycle_log WHERE run_id = $1', [runId]);
  if (log.rows[0]?.n !== expectedLogRows) throw new Error(`bench run ${runId} wrote ${log.rows[0]?.n ?? 0} log rows, expected ${expectedLogRows}`);
  return { runId, seconds: Number(t1 - t0 + (t3 - t2)) / 1e9, phases: await phaseSeconds(live.pool, runId) };
}

/** A live run of a snapshot file against a registered target, timed by timeLiveRun. */
export function timeSnapshotRun(live: LiveFleet, target: string, snapshotPath: string, expectedLogRows: number): Promise<TimedRun> {
  return timeLiveRun(
    live,
    async () => {
      const { runId } = await enqueueRun(
        { pool: live.pool, redis: live.redis, prefix: live.prefix },
        { target, snapshotPath, mode: 'live', operator: 'bench', approvalWindowS: 3600 },
      );
      return runId;
    },
    expectedLogRows,
  );
}

async function errorOf(live: LiveFleet, runId: string): Promise<string> {
  const { rows } = await live.pool.query<{ error_message: string | null }>('SELECT error_message FROM cutter_governance.run WHERE run_id = $1', [runId]);
  return rows[0]?.error_message ? `: ${rows[0].error_message}` : '';
}

/** Sum of the timed phases' seconds, leaving out the ones named in except. */
export function phaseSum(phases: Record<string, number>, except: readonly string[] = []): number {
  return PHASES_TIMED.filter((p) => !except.includes(p)).reduce((n, p) => n + (Number.isFinite(phases[p]) ? (phases[p] ?? 0) : 0), 0);
}

/** The phases of a run as the notes list them, e.g. "precheck 0.12 s, grant-probe 0.01 s, …". */
export function phaseList(phases: Record<string, number>, except: readonly string[] = []): string {
  return PHASES_TIMED.filter((p) => !except.includes(p) && Number.isFinite(phases[p]))
    .map((p) => `${p} ${(phases[p] ?? 0).toFixed(2)} s`)
    .join(', ');
}

/** What a whole-run figure spends outside its phases: the enqueue, the hand-offs between jobs and the 20 ms status polling. */
export function outsidePhases(run: TimedRun): number {
  return run.seconds - phaseSum(run.phases);
}

/** Phase seconds to two decimals, for the bench's log lines. */
export const roundedPhases = (phases: Record<string, number>) => Object.fromEntries(Object.entries(phases).map(([p, s]) => [p, Number(s.toFixed(2))]));
