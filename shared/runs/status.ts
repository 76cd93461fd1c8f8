/** The run statuses of DESIGN §4. */
export const RUN_STATUSES = ['queued', 'running', 'awaiting_approval', 'succeeded', 'failed', 'expired', 'cancelled', 'rejected', 'abandoned'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

/**
 * The statuses of a run still in flight: it owns its corpus lock and may
 * still change. SQL asks cutter_governance.run_in_flight(status) (its one
 * list on the database's side); test/unit holds the two equal.
 */
export const IN_FLIGHT_STATUSES = ['queued', 'running', 'awaiting_approval'] as const satisfies readonly RunStatus[];

/** True while the run can still change. */
export function inFlight(status: string): boolean {
  return (IN_FLIGHT_STATUSES as readonly string[]).includes(status);
}

/** True once the run can change no more. */
export function hasEnded(status: string): boolean {
  return (RUN_STATUSES as readonly string[]).includes(status) && !inFlight(status);
}

/** The statuses of a run someone said no to (cutter cancel, a signed REJECT): shared/runs/stop.ts. */
export const STOPPED_STATUSES = ['cancelled', 'rejected'] as const satisfies readonly RunStatus[];
export type StoppedStatus = (typeof STOPPED_STATUSES)[number];

/** True for a run someone said no to. */
export function isStopped(status: string): status is StoppedStatus {
  return (STOPPED_STATUSES as readonly string[]).includes(status);
}

/** True once the run has ended any way but succeeded (the CLI's exit 1). */
export function endedUnsuccessful(status: string): boolean {
  return hasEnded(status) && status !== 'succeeded';
}
