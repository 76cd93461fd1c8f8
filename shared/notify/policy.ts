import { z } from 'zod';

/**
 * The notify queue: one job per (event, endpoint), named `${seq}.${endpoint}`
 * so a sweep that finds the same event again adds nothing. Its data is ids
 * only; the event is read from Postgres and the URL from the configuration.
 */
export const NOTIFY_QUEUE = 'notify';

export const notifyJobData = z
  .object({ seq: z.number().int().positive(), endpointId: z.string().regex(/^[0-9a-f]{16}$/) })
  .strict();
export type NotifyJobData = z.infer<typeof notifyJobData>;

/** BullMQ job ids may not contain ':' nor be integers. */
export function notifyJobId(data: NotifyJobData): string {
  return `${data.seq}.${data.endpointId}`;
}

/**
 * Retries: 15 attempts, exponential from 1 s with equal jitter, each wait at
 * most 15 min (so between about 40 and 80 minutes in all); a Retry-After
 * answer waits at least what it asks, up to an hour. Each POST gives up
 * after 5 s: a slow receiver costs a notify slot, never a phase.
 */
export const NOTIFY_POLICY = {
  attempts: 15,
  baseDelayMs: 1000,
  maxDelayMs: 15 * 60_000,
  maxRetryAfterMs: 3600_000,
  timeoutMs: 5000,
} as const;

/** The wait before attempt `attempt + 1`, after attempt `attempt` (1-based) failed. */
export function retryDelayMs(attempt: number, retryAfterMs: number | null, random: () => number = Math.random): number {
  const ceiling = Math.min(NOTIFY_POLICY.maxDelayMs, NOTIFY_POLICY.baseDelayMs * 2 ** (attempt - 1));
  const jittered = Math.round(ceiling / 2 + random() * (ceiling / 2));
  if (retryAfterMs === null) return jittered;
  return Math.max(jittered, Math.min(retryAfterMs, NOTIFY_POLICY.maxRetryAfterMs));
}

/** Retry-After as delta-seconds or an HTTP date, in ms from now; null when absent or unreadable. */
export function parseRetryAfter(header: string | null, nowMs: number = Date.now()): number | null {
  if (header === null) return null;
  const value = header.trim();
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, at - nowMs);
}
