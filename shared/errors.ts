/**
 * Errors carry a stable `code`; the CLI and the HTTP layer map codes to exit
 * codes and statuses in one table each, so messages can change without
 * breaking scripts that branch on the code.
 */

/** How the command line should end when this error reaches it. */
export type ExitKind = 'refused' | 'bad_input' | 'failure';

export class CutterError extends Error {
  readonly code: string;
  readonly kind: ExitKind;
  /** Retrying the same work cannot succeed (BullMQ: UnrecoverableError). */
  readonly unrecoverable: boolean;

  constructor(
    code: string,
    message: string,
    options: { kind?: ExitKind; unrecoverable?: boolean; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CutterError';
    this.code = code;
    this.kind = options.kind ?? 'failure';
    this.unrecoverable = options.unrecoverable ?? true;
  }
}

/** A bad configuration value: every command stops with exit 2. */
export class ConfigError extends CutterError {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super('CONFIG_INVALID', message, { kind: 'bad_input' });
    this.name = 'ConfigError';
  }
}

/** Turns anything thrown into an Error, keeping the original as its cause. */
export function coerceError(thrown: unknown): Error {
  if (thrown instanceof Error) return thrown;
  return new Error(typeof thrown === 'string' ? thrown : JSON.stringify(thrown), { cause: thrown });
}

/** The stable code of an error, or INTERNAL for one that carries none. */
export function errorCode(err: unknown): string {
  return err instanceof CutterError ? err.code : 'INTERNAL';
}

/** Process exit code for an error reaching the CLI (DESIGN §4: 1 failed/refused, 2 bad input). */
export function exitCodeFor(err: unknown): number {
  if (err instanceof CutterError && err.kind === 'bad_input') return 2;
  return 1;
}
