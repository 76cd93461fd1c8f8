import type { FlowJob } from 'bullmq';
import type { RedisClient } from '../redis.js';
import type { Config } from '../config.js';
import { DEFAULT_APPROVAL_WINDOW_S, phasesFor, type RunMode } from '../jobs/catalog.js';
import { countWorkers } from '../jobs/workers.js';
import { blocker, messageOf, type PackageResult } from './types.js';

/**
 * The command package: what turns `cutter run` into work. Every phase queue
 * of a live run needs a live worker under CUTTER_QUEUE_PREFIX (asked with
 * CLIENT LIST, which is how BullMQ names its workers), and the run's flow
 * must build. The flow is built in memory and never added.
 */

/** The producer's flow builder (producers/flow/tree.ts), injected so shared/ does not import producers/. */
export type FlowBuilder = (args: { runId: string; mode: RunMode; approvalWindowMs: number; prefix: string }) => FlowJob;

export const COMMAND_PACKAGE = 'command package';

/** Walks a flow from its root down its only child chain. */
function chain(flow: FlowJob): FlowJob[] {
  const out: FlowJob[] = [];
  for (let node: FlowJob | undefined = flow; node; node = node.children?.[0]) out.push(node);
  return out;
}

/** Problems with the built flow, or [] when it is the live run's tree the workers expect. */
function flowProblems(flow: FlowJob, prefix: string): string[] {
  const nodes = chain(flow);
  const order = nodes.map((n) => n.queueName).reverse();
  const expected = phasesFor('live');
  const problems: string[] = [];
  if (order.join(',') !== expected.join(',')) problems.push(`phases run ${order.join(' → ')}, not ${expected.join(' → ')}`);
  const wrongPrefix = nodes.filter((n) => n.prefix !== prefix).map((n) => n.queueName);
  if (wrongPrefix.length) problems.push(`${wrongPrefix.join(', ')} not under prefix ${prefix}`);
  const gate = nodes.find((n) => n.queueName === 'approval-gate');
  if (!gate?.opts?.delay) problems.push('the approval gate has no delay (it would not wait for SG_1)');
  return problems;
}

/** Counts live workers per live-run phase and builds the flow; writes nothing to Redis. */
export async function checkCommandPackage(cfg: Config, redis: RedisClient, buildFlow: FlowBuilder, targetName: string | null): Promise<PackageResult> {
  const prefix = cfg.CUTTER_QUEUE_PREFIX;
  const phases = phasesFor('live');
  let counts: [string, number][];
  try {
    counts = await countWorkers(redis, prefix, phases);
  } catch (err) {
    return { name: COMMAND_PACKAGE, runnable: 'NO', verified: 'not checked', checks: [], blockers: [], failure: `command package: Redis did not answer CLIENT LIST: ${messageOf(err)}` };
  }
  let problems: string[];
  try {
    problems = flowProblems(buildFlow({ runId: 'run-readiness-probe', mode: 'live', approvalWindowMs: DEFAULT_APPROVAL_WINDOW_S * 1000, prefix }), prefix);
  } catch (err) {
    problems = [`building it threw: ${messageOf(err)}`];
  }
  const idle = counts.filter(([, n]) => n === 0).map(([p]) => p);
  const checks = [
    `live workers under prefix ${prefix} (CLIENT LIST): ${counts.map(([p, n]) => `${p} ${n}`).join(', ')}`,
    problems.length
      ? `the live flow${targetName ? ` for target ${targetName}` : ''} built in memory is wrong: ${problems.join('; ')}`
      : `the live flow${targetName ? ` for target ${targetName}` : ''} built in memory (not added): ${phases.length} jobs ${phases.join(' → ')}, gate delayed ${DEFAULT_APPROVAL_WINDOW_S} s by default`,
  ];
  const blockers = [];
  if (idle.length) {
    blockers.push(
      blocker(
        'operator',
        `${idle.length === phases.length ? '`cutter worker`' : `\`cutter worker --phases ${idle.join(',')}\``} running with CUTTER_QUEUE_PREFIX=${prefix} against this REDIS_URL`,
        `no live worker serves ${idle.join(', ')} under prefix ${prefix}: precheck would fail the run with PRECHECK_NO_WORKERS`,
      ),
    );
  }
  if (problems.length) {
    blockers.push(blocker('operator', 'a cutter build whose flow builder matches its job catalog (reinstall this version)', problems.join('; ')));
  }
  const ok = blockers.length === 0;
  return {
    name: COMMAND_PACKAGE,
    runnable: ok ? 'YES' : 'NO',
    verified: ok ? `every phase queue has a live worker under prefix ${prefix}, and the run's flow builds` : `${idle.length} of ${phases.length} phase queue(s) without a live worker${problems.length ? '; the flow does not build as expected' : ''}`,
    checks,
    blockers,
    failure: null,
  };
}
