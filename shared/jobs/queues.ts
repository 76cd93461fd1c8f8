import { Queue, type ConnectionOptions } from 'bullmq';
import { PHASES, type Phase } from './catalog.js';

/** One Queue handle per phase queue under the prefix, on one connection: what the fleet and the board both open. */
export function openPhaseQueues(connection: ConnectionOptions, prefix: string): Record<Phase, Queue> {
  return Object.fromEntries(PHASES.map((p) => [p, new Queue(p, { connection, prefix })])) as Record<Phase, Queue>;
}
