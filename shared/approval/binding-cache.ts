import type { GateRun } from './binding.js';

/**
 * The bindings of runs awaiting approval, as this process last read them, so
 * the approval that completes a run's SG_1 and EXEC (its second POST, or
 * later) does not read the run again: a PostgreSQL round trip off the path
 * from that POST to execute.
 *
 * Only what is frozen while a run awaits approval is taken from here: its
 * target, operator, plan hash and scope (cutplan builds the change set once;
 * a redelivered cutplan returns the one it stored), and its window. What
 * changes (the run's status; whether the window has ended, in the database's
 * clock) is decided again under the run's lock by store_approval for every
 * approval, whatever this holds. And a cached binding only ever lets an
 * approval through: when any check fails on it, the approval is judged again
 * on a fresh read (submitApproval), so its refusal is exactly the one a fresh
 * read gives. The gate and execute never use it: they read Postgres.
 */
export class BindingCache {
  private readonly runs = new Map<string, GateRun>();

  constructor(private readonly capacity = 256) {}

  get(runId: string): GateRun | undefined {
    return this.runs.get(runId);
  }

  /** Keeps a run read awaiting approval with its plan; anything else is not worth keeping. */
  remember(run: GateRun): void {
    if (run.status !== 'awaiting_approval' || run.planSha256 === null || run.windowEndsAt === null) return;
    this.runs.delete(run.runId);
    this.runs.set(run.runId, run);
    // A Map iterates in insertion order: the first key is the oldest.
    if (this.runs.size > this.capacity) this.runs.delete(this.runs.keys().next().value as string);
  }

  forget(runId: string): void {
    this.runs.delete(runId);
  }
}
