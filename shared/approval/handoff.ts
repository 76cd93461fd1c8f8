import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { ClaimedPhase, RunRow } from '../runs/store.js';
import { gateReadsFromClaim } from './binding.js';

/**
 * The gate's read, handed over by the endpoint that released it. The commit
 * that stored the completing approval answered with the run's gate_handoff
 * (migration 018: the run row and the gate's reads, in one canonical text),
 * so the gate need not read them again before it opens: the endpoint leaves
 * that text in Redis beside the gate's job, just before the promote, and the
 * gate takes it when it wakes.
 *
 * Nothing in it is trusted. The gate judges it like its own read (every
 * signature, the binding, the expiry, the quorum), and open_gate opens only
 * if PostgreSQL, under the run's lock, in the commit that consumes the
 * approvals, still holds exactly the text judged (otherwise CG003 and
 * nothing changes; the gate then reads PostgreSQL itself). A missing,
 * malformed, stale or tampered handoff therefore costs a read, never a
 * decision.
 */

/** Long enough for a gate whose workers are busy; a handoff not taken by then is simply not used. */
const HANDOFF_TTL_MS = 300_000;

/** The gate's read as the endpoint handed it over, and the exact text the opening must still find. */
export interface GateHandoff extends ClaimedPhase {
  judged: string;
}

/** Beside the gate's job: under the approval-gate queue's prefix, apart from BullMQ's own keys. */
function handoffKey(gateQueue: Queue, runId: string): string {
  return gateQueue.toKey(`cutter-handoff:${runId}`);
}

/**
 * Sends the handoff for runId's gate on client, the gate queue's own
 * connection, at once: the caller need not wait for its answer before the
 * promote it sends next on that connection, which Redis runs after it, so
 * the gate cannot wake before its handoff is there.
 */
export function leaveHandoff(client: Awaited<ReturnType<Queue['getBackend']>['client']>, gateQueue: Queue, runId: string, handoff: string): Promise<unknown> {
  return client.set(handoffKey(gateQueue, runId), handoff, { PX: HANDOFF_TTL_MS });
}

const RUN_TIMES = ['created_at', 'started_at', 'updated_at', 'finished_at'] as const;

/** Takes (reads and deletes) runId's handoff; null when there is none or it is not one. */
export async function takeHandoff(redis: Redis, gateQueue: Queue, runId: string): Promise<GateHandoff | null> {
  const judged = await redis.getdel(handoffKey(gateQueue, runId));
  if (judged === null) return null;
  try {
    const { run, reads } = JSON.parse(judged) as { run: Record<string, unknown> | null; reads: unknown };
    if (run === null || typeof run !== 'object' || run['run_id'] !== runId) return null;
    // to_jsonb gives the run's times as text.
    for (const k of RUN_TIMES) if (typeof run[k] === 'string') run[k] = new Date(run[k]);
    gateReadsFromClaim(run as unknown as RunRow, reads); // throws on reads that are not the gate's
    // Always started: only what PostgreSQL confirms may end the gate's job, never a status read from Redis.
    return { run: run as unknown as RunRow, started: true, gateReads: reads, judged };
  } catch {
    return null;
  }
}
