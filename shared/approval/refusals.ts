import { CutterError } from '../errors.js';

/**
 * Every way the approval endpoint can say no, with its HTTP status (DESIGN §5).
 * This is the one table: the endpoint answers with it, the CLI prints the
 * code, and tests assert both. Codes are stable; messages may change.
 */
export const APPROVAL_REFUSAL_STATUS = {
  // 400: the request or the document is malformed.
  BODY_NOT_JSON: 400,
  APPROVAL_ENVELOPE_INVALID: 400,
  APPROVAL_KEY_ID_INVALID: 400,
  APPROVAL_SIGNATURE_ENCODING: 400,
  APPROVAL_DOCUMENT_FORMAT: 400,
  APPROVAL_DOCUMENT_LINES: 400,
  APPROVAL_DOCUMENT_FIELD: 400,
  // 403: the signer is not one who may approve this run.
  APPROVAL_KEY_UNKNOWN: 403,
  APPROVAL_SIGNATURE_INVALID: 403,
  APPROVAL_SELF_APPROVAL: 403,
  // 404: no such run.
  RUN_UNKNOWN: 404,
  // 409: the document does not fit the run's state, or was used before.
  APPROVAL_GATE_WRONG: 409,
  APPROVAL_RUN_MISMATCH: 409,
  APPROVAL_RUN_NOT_AWAITING: 409,
  APPROVAL_TARGET_MISMATCH: 409,
  APPROVAL_PLAN_MISMATCH: 409,
  APPROVAL_NONCE_REPLAYED: 409,
  APPROVAL_KEY_ALREADY_USED: 409,
  APPROVAL_SWITCH_BUSY: 409,
  // 413, 415: refused before the body is parsed.
  BODY_TOO_LARGE: 413,
  CONTENT_TYPE_UNSUPPORTED: 415,
  // 422: well-formed and bound to the run, but not valid now or not enough.
  APPROVAL_NOT_YET_VALID: 422,
  APPROVAL_DOCUMENT_EXPIRED: 422,
  APPROVAL_VALIDITY_TOO_LONG: 422,
  APPROVAL_VALIDITY_INVALID: 422,
  APPROVAL_ALLOWANCE_UNITS: 422,
  APPROVAL_ALLOWANCE_TRANSITIONS: 422,
  // 429: too many requests from this client.
  RATE_LIMITED: 429,
} as const;

export type ApprovalRefusalCode = keyof typeof APPROVAL_REFUSAL_STATUS;

/** The HTTP status for an error code; 500 for anything that is not a refusal. */
export function httpStatusFor(code: string): number {
  return (APPROVAL_REFUSAL_STATUS as Record<string, number>)[code] ?? 500;
}

/**
 * A refusal: a CutterError whose code is in the table (CLI exit 1). It is an
 * answer, not a fault, so it carries no stack: the trace would only name
 * this module's callers, and capturing it cost 19 µs of every refused request.
 */
export function refusal(code: ApprovalRefusalCode, message: string): CutterError {
  const depth = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new CutterError(code, message, { kind: 'refused' });
  } finally {
    Error.stackTraceLimit = depth;
  }
}

/** True when err is a refusal from the table (as opposed to an internal fault). */
export function isRefusal(err: unknown): err is CutterError & { code: ApprovalRefusalCode } {
  return err instanceof CutterError && err.code in APPROVAL_REFUSAL_STATUS;
}
