import type { Logger } from './logger.js';

/** How often a recurring connection error is logged again while it lasts. */
export const OUTAGE_LOG_INTERVAL_MS = 30_000;

/**
 * Logs a recurring error once per interval, with how many times it recurred
 * in between. During a Redis or PostgreSQL outage every queue, worker and
 * pool reports each reconnect attempt: 574 warnings in 90 s buried the one
 * line that mattered. Keyed by what failed and its message, so a different
 * error still shows at once.
 */
export function outageLog(log: Logger, intervalMs = OUTAGE_LOG_INTERVAL_MS): (service: string, err: Error, msg: string) => void {
  const last = new Map<string, { at: number; repeated: number }>();
  return (service, err, msg) => {
    const key = `${service}\u0000${err.message}`;
    const now = Date.now();
    const seen = last.get(key);
    if (seen && now - seen.at < intervalMs) {
      seen.repeated += 1;
      return;
    }
    last.set(key, { at: now, repeated: 0 });
    log.warn({ err, service, repeated_since_last_line: seen?.repeated ?? 0, interval_s: intervalMs / 1000 }, msg);
  };
}
