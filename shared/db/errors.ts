/** True when err is a PostgreSQL error with that SQLSTATE. */
export function isPgError(err: unknown, sqlstate: string): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === sqlstate;
}
