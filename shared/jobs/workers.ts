import { Queue } from 'bullmq';
import type { RedisClient } from '../redis.js';
import type { Phase } from './catalog.js';

/**
 * Live workers per phase queue under a prefix (BullMQ answers from Redis's
 * CLIENT LIST), without writing to Redis: skipMetasUpdate keeps a Queue from
 * writing its meta hash when it connects.
 */
export async function countWorkers(redis: RedisClient, prefix: string, phases: readonly Phase[]): Promise<[Phase, number][]> {
  const counts: [Phase, number][] = [];
  for (const phase of phases) {
    const queue = new Queue(phase, { connection: redis, prefix, skipMetasUpdate: true });
    try {
      counts.push([phase, (await queue.getWorkers()).length]);
    } finally {
      await queue.close();
    }
  }
  return counts;
}
