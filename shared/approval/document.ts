import { ALLOWANCE_KINDS, type AllowanceKind } from '../units/lifecycle.js';
import { refusal } from './refusals.js';

/**
 * The approval document of DESIGN §3: an exact text, LF line endings, these
 * lines in this order, ending with one LF. Other programs produce and check
 * it independently, so the grammar is strict: anything that is not exactly
 * this shape is refused, never repaired.
 */

export const APPROVAL_GATES = ['SG_1', 'EXEC', 'REJECT'] as const;
export type ApprovalGate = (typeof APPROVAL_GATES)[number];

/** The line names, in the only order allowed. */
export const DOCUMENT_FIELDS = [
  'cutter-approval',
  'gate',
  'run_id',
  'target',
  'plan_sha256',
  'signed_utc',
  'expires_utc',
  'allowance',
  'nonce',
] as const;

export const DOCUMENT_VERSION = 'v1';

/** SG_1 allows a plan of at most maxUnits units using only these transitions (a revert's among them: docs/undo.md). */
export interface PlanAllowance {
  kind: 'plan';
  maxUnits: number;
  transitions: AllowanceKind[];
}

/** EXEC allows one thing: turning the kill switch on for the run. */
export interface ExecAllowance {
  kind: 'exec';
}

/** REJECT allows nothing: it ends the run `rejected`, for the reason it gives. */
export interface RejectAllowance {
  kind: 'reject';
  reason: string;
}

export interface ApprovalDocument {
  gate: ApprovalGate;
  runId: string;
  target: string;
  planSha256: string;
  signedUtc: Date;
  expiresUtc: Date;
  allowance: PlanAllowance | ExecAllowance | RejectAllowance;
  nonce: string;
}

const RUN_ID = /^[A-Za-z0-9_-]{8,64}$/;
const TARGET = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const SHA256 = /^[0-9a-f]{64}$/;
const NONCE = /^[0-9a-f]{32}$/;
const UTC = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z$/;
const GATE_TOKEN = /^[A-Za-z0-9_]{1,32}$/;
const PLAN_ALLOWANCE = /^max_units=(0|[1-9][0-9]{0,9}); transitions=([^,\s]+(?:,[^,\s]+)*)$/;
const EXEC_ALLOWANCE = 'execution_enabled=true';
/** A rejection's reason: 1-200 printable ASCII characters (the line's value has no edge spaces). */
export const REJECT_REASON = /^[\x20-\x7e]{1,200}$/;
const REJECT_ALLOWANCE = /^reason=(.+)$/;
const INT4_MAX = 2_147_483_647;
// Printable ASCII and LF: every field is ASCII, so anything else is a forgery or an editor's doing.
const ALLOWED_BYTES = /^[\x20-\x7e\n]*$/;

/** Parses an approval document exactly; throws a 400/409 refusal naming the first problem. */
export function parseApprovalDocument(text: string): ApprovalDocument {
  const values = splitLines(text);
  const field = (name: (typeof DOCUMENT_FIELDS)[number]): string => values[DOCUMENT_FIELDS.indexOf(name)] ?? '';
  if (field('cutter-approval') !== DOCUMENT_VERSION) {
    throw fieldError('cutter-approval', `must be ${DOCUMENT_VERSION}`);
  }
  const gateText = field('gate');
  if (!GATE_TOKEN.test(gateText)) throw fieldError('gate', 'must be SG_1, EXEC or REJECT');
  if (!(APPROVAL_GATES as readonly string[]).includes(gateText)) {
    throw refusal('APPROVAL_GATE_WRONG', `gate ${gateText} is not a gate this endpoint takes (SG_1, EXEC or REJECT)`);
  }
  const gate = gateText as ApprovalGate;
  const runId = field('run_id');
  if (!RUN_ID.test(runId)) throw fieldError('run_id', 'must be 8-64 letters, digits, _ or -');
  const target = field('target');
  if (!TARGET.test(target)) throw fieldError('target', 'must be a target name (letters, digits, . _ -)');
  const planSha256 = field('plan_sha256');
  if (!SHA256.test(planSha256)) throw fieldError('plan_sha256', 'must be 64 lowercase hex digits');
  const signedUtc = parseUtc('signed_utc', field('signed_utc'));
  const expiresUtc = parseUtc('expires_utc', field('expires_utc'));
  const allowance = parseAllowance(gate, field('allowance'));
  const nonce = field('nonce');
  if (!NONCE.test(nonce)) throw fieldError('nonce', 'must be 32 lowercase hex digits');
  return { gate, runId, target, planSha256, signedUtc, expiresUtc, allowance, nonce };
}

/** The exact text of a document: what a signer signs. */
export function serialiseApprovalDocument(doc: ApprovalDocument): string {
  const allowance =
    doc.allowance.kind === 'exec'
      ? EXEC_ALLOWANCE
      : doc.allowance.kind === 'reject'
        ? `reason=${doc.allowance.reason}`
        : `max_units=${doc.allowance.maxUnits}; transitions=${doc.allowance.transitions.join(',')}`;
  const values: Record<(typeof DOCUMENT_FIELDS)[number], string> = {
    'cutter-approval': DOCUMENT_VERSION,
    gate: doc.gate,
    run_id: doc.runId,
    target: doc.target,
    plan_sha256: doc.planSha256,
    signed_utc: formatUtc(doc.signedUtc),
    expires_utc: formatUtc(doc.expiresUtc),
    allowance,
    nonce: doc.nonce,
  };
  return DOCUMENT_FIELDS.map((name) => `${name}: ${values[name]}\n`).join('');
}

/** 2026-11-24T02:15:00Z: whole seconds, UTC, the only time form a document uses. */
export function formatUtc(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Byte-level and line-level checks; returns the nine values in order. */
function splitLines(text: string): string[] {
  if (text.includes('\r')) {
    throw refusal('APPROVAL_DOCUMENT_FORMAT', 'the document has CR characters (CRLF line endings?): lines must end with LF alone');
  }
  if (!ALLOWED_BYTES.test(text)) {
    throw refusal('APPROVAL_DOCUMENT_FORMAT', 'the document has characters other than printable ASCII and LF');
  }
  if (!text.endsWith('\n')) throw refusal('APPROVAL_DOCUMENT_FORMAT', 'the document must end with one LF after its last line');
  const lines = text.slice(0, -1).split('\n');
  const names: string[] = [];
  const values: string[] = [];
  lines.forEach((line, i) => {
    const n = i + 1;
    if (line === '') throw refusal('APPROVAL_DOCUMENT_LINES', `line ${n} is empty (blank lines and a second final LF are not allowed)`);
    if (line !== line.trim()) throw refusal('APPROVAL_DOCUMENT_FORMAT', `line ${n} has leading or trailing whitespace`);
    const match = /^([a-z0-9_-]+): (\S(?:.*\S)?)$/.exec(line);
    if (!match) throw refusal('APPROVAL_DOCUMENT_LINES', `line ${n} is not "name: value" (one space after the colon)`);
    names.push(match[1] ?? '');
    values.push(match[2] ?? '');
  });
  checkLineOrder(names);
  return values;
}

/** Names exactly DOCUMENT_FIELDS in order; the message says which kind of deviation it is. */
function checkLineOrder(names: string[]): void {
  const expected: readonly string[] = DOCUMENT_FIELDS;
  const seen = new Set<string>();
  for (const [i, name] of names.entries()) {
    if (!expected.includes(name)) throw refusal('APPROVAL_DOCUMENT_LINES', `line ${i + 1}: "${name}" is not a line of the document`);
    if (seen.has(name)) throw refusal('APPROVAL_DOCUMENT_LINES', `line ${i + 1}: "${name}" is repeated`);
    seen.add(name);
  }
  const missing = expected.filter((name) => !seen.has(name));
  if (missing.length) throw refusal('APPROVAL_DOCUMENT_LINES', `missing line(s): ${missing.join(', ')}`);
  const misplaced = names.findIndex((name, i) => name !== expected[i]);
  if (misplaced >= 0) {
    throw refusal('APPROVAL_DOCUMENT_LINES', `line ${misplaced + 1} is "${names[misplaced] ?? ''}" where "${expected[misplaced] ?? ''}" belongs: lines are in a fixed order`);
  }
}

function parseUtc(name: string, text: string): Date {
  const m = UTC.exec(text);
  if (!m) throw fieldError(name, 'must be YYYY-MM-DDTHH:MM:SSZ');
  const date = new Date(text);
  // Date accepts 2026-02-30 by rolling over; a round trip catches it.
  if (Number.isNaN(date.getTime()) || formatUtc(date) !== text) throw fieldError(name, `${text} is not a real UTC time`);
  return date;
}

function parseAllowance(gate: ApprovalGate, text: string): PlanAllowance | ExecAllowance | RejectAllowance {
  if (gate === 'EXEC') {
    if (text !== EXEC_ALLOWANCE) throw fieldError('allowance', `an EXEC grant's allowance is exactly "${EXEC_ALLOWANCE}"`);
    return { kind: 'exec' };
  }
  if (gate === 'REJECT') {
    const reason = REJECT_ALLOWANCE.exec(text)?.[1];
    if (reason === undefined || !REJECT_REASON.test(reason)) {
      throw fieldError('allowance', 'a rejection\'s allowance is "reason=<1-200 printable ASCII characters>"');
    }
    return { kind: 'reject', reason };
  }
  const m = PLAN_ALLOWANCE.exec(text);
  if (!m) throw fieldError('allowance', 'an SG_1 allowance is "max_units=<int>; transitions=<t>[,<t>...]"');
  const maxUnits = Number(m[1]);
  if (maxUnits > INT4_MAX) throw fieldError('allowance', `max_units must be at most ${INT4_MAX}`);
  const list = (m[2] ?? '').split(',');
  const unknown = list.filter((t) => !(ALLOWANCE_KINDS as readonly string[]).includes(t));
  if (unknown.length) throw fieldError('allowance', `unknown transition(s) ${unknown.join(', ')}; known: ${ALLOWANCE_KINDS.join(', ')}`);
  if (new Set(list).size !== list.length) throw fieldError('allowance', 'a transition is listed twice');
  return { kind: 'plan', maxUnits, transitions: list as AllowanceKind[] };
}

function fieldError(name: string, message: string) {
  return refusal('APPROVAL_DOCUMENT_FIELD', `${name}: ${message}`);
}
