import { isUnitState, UNIT_STATES, type UnitState } from '../units/lifecycle.js';
import type { RecordPosition, SnapshotIssue } from './issues.js';

/** The limits of C5, in one place. */
export const SNAPSHOT_LIMITS = {
  /** A unit body, in UTF-8 bytes. */
  maxBodyBytes: 1_048_576,
  /** One record as it stands in the file: room for a maximal body written with \u escapes. */
  maxRecordBytes: 8 * 1_048_576,
  /** Issues collected before reading stops. */
  defaultMaxErrors: 20,
} as const;

/** DESIGN §2: the form of a unit key. */
export const KEY_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$/;

/** A validated snapshot record. */
export interface SnapshotRecord {
  key: string;
  state: UnitState;
  body: string;
}

// PostgreSQL text cannot hold U+0000, and a lone surrogate would silently
// become U+FFFD on the way to UTF-8: both would change the body we stage.
// eslint-disable-next-line no-control-regex -- U+0000 is exactly what is looked for
const UNSTORABLE = /\u0000|\p{Cs}/u;

/** A value as JSON for a message, cut short so one bad record cannot flood the report. */
function shown(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}…` : text;
}

/**
 * Checks one parsed JSON value against the record shape, reporting every
 * problem it has (not just the first); returns the record when there were none.
 */
export function checkRecord(
  value: unknown,
  corpus: string,
  at: RecordPosition,
  report: (issue: SnapshotIssue) => void,
): SnapshotRecord | null {
  const issue = (field: string | null, message: string) => report({ line: at.line, ...(at.index === undefined ? {} : { index: at.index }), field, message });
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    issue(null, `expected an object {"key", "state", "body"}, found ${Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value}`);
    return null;
  }
  const v = value as Record<string, unknown>;
  let ok = true;
  for (const field in v) {
    if (field !== 'key' && field !== 'state' && field !== 'body') {
      issue(field.length > 80 ? `${field.slice(0, 77)}…` : field, `unknown field (a record has exactly "key", "state" and "body")`);
      ok = false;
    }
  }
  const { key, state, body } = v;
  if (key === undefined) {
    issue('key', 'missing');
    ok = false;
  } else if (typeof key !== 'string' || !KEY_PATTERN.test(key)) {
    issue('key', `invalid key ${shown(key)}: must match ${KEY_PATTERN.source}`);
    ok = false;
  } else if (!key.startsWith(`${corpus}/`)) {
    const slash = key.indexOf('/');
    issue('key', slash > 0
      ? `key "${key}" belongs to corpus ${key.slice(0, slash)}, not to the target's corpus ${corpus}`
      : `key "${key}" does not belong to the target's corpus ${corpus} (keys start with "${corpus}/")`);
    ok = false;
  }
  if (state === undefined) {
    issue('state', 'missing');
    ok = false;
  } else if (!isUnitState(state)) {
    issue('state', `unknown state ${shown(state)} (expected ${UNIT_STATES.join(', ')})`);
    ok = false;
  }
  if (body === undefined) {
    issue('body', 'missing');
    ok = false;
  } else if (typeof body !== 'string') {
    issue('body', `must be a string, found ${body === null ? 'null' : typeof body}`);
    ok = false;
  } else {
    // Three UTF-8 bytes per UTF-16 unit at most: only long bodies need counting.
    const bytes = body.length * 3 > SNAPSHOT_LIMITS.maxBodyBytes ? Buffer.byteLength(body, 'utf8') : 0;
    if (bytes > SNAPSHOT_LIMITS.maxBodyBytes) {
      issue('body', `oversize body: ${bytes} bytes, over the limit of ${SNAPSHOT_LIMITS.maxBodyBytes} bytes (UTF-8)`);
      ok = false;
    } else if (UNSTORABLE.test(body)) {
      issue('body', 'contains U+0000 or an unpaired surrogate (\\ud800-\\udfff), which cannot be stored as UTF-8 text');
      ok = false;
    }
  }
  return ok ? { key: key as string, state: state as UnitState, body: body as string } : null;
}
