/** One step of a poll loop that is always bounded by a deadline. */
export function pollStep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms)); // bounded by the caller's deadline
}

/**
 * Polls the clock until it reaches `atMs` (epoch ms), in steps of a few ms,
 * for a test that must act at a known moment (e.g. just before a deadline
 * recorded in Postgres). Returns at once when the moment has passed.
 */
export async function untilClock(atMs: number): Promise<void> {
  while (Date.now() < atMs) await pollStep(Math.min(5, atMs - Date.now()));
}

/**
 * Polls `check` until it returns a value other than undefined, or fails the
 * test when the deadline passes. Never a fixed sleep.
 */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  options: { deadlineMs?: number; stepMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + (options.deadlineMs ?? 20_000);
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await pollStep(options.stepMs ?? 50);
  }
}
