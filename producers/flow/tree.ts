import type { FlowJob } from 'bullmq';
import {
  jobId,
  KEEP_COMPLETED,
  KEEP_FAILED,
  PHASE_POLICY,
  phasesFor,
  type RunMode,
} from '../../shared/jobs/catalog.js';

/**
 * One run = one FlowProducer tree. BullMQ runs children before parents, so
 * the first phase (precheck) is the deepest leaf and verify is the root.
 * A live run's approval-gate is the parent of cutplan with a delay: it enters
 * `delayed` when the plan exists and waits there for the approval window.
 */
export function buildRunFlow(args: { runId: string; mode: RunMode; approvalWindowMs: number; prefix: string }): FlowJob {
  let child: FlowJob | undefined;
  for (const phase of phasesFor(args.mode)) {
    const policy = PHASE_POLICY[phase];
    const node: FlowJob = {
      name: phase,
      queueName: phase,
      prefix: args.prefix,
      data: { runId: args.runId },
      opts: {
        jobId: jobId(args.runId, phase),
        attempts: policy.attempts,
        backoff: { type: 'exponential', delay: policy.backoffMs },
        // A failed phase fails every later one at once, without running it.
        failParentOnFailure: true,
        removeOnComplete: KEEP_COMPLETED,
        removeOnFail: KEEP_FAILED,
        ...(phase === 'approval-gate' ? { delay: args.approvalWindowMs } : {}),
      },
      ...(child ? { children: [child] } : {}),
    };
    child = node;
  }
  if (!child) throw new Error('a run has at least one phase');
  return child;
}
