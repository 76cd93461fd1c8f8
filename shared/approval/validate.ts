import { allowanceExcess, type PlanScope } from '../plan/scope.js';
import { parseApprovalDocument, type ApprovalDocument, type PlanAllowance } from './document.js';
import { verifyEnvelope, type ApprovalEnvelope } from './envelope.js';
import { sharedIdentity, type RunEnqueuer } from './identity.js';
import type { TrustedKey, TrustedKeys } from './keys.js';
import { refusal } from './refusals.js';

/**
 * validate_sovereign_approval (DESIGN §3): one function decides whether an
 * envelope is a valid approval for a run. The endpoint calls it on arrival,
 * the gate again on every stored document before it releases, and execute
 * once more before it writes; the stage says which time rules apply.
 */

/** How far a signer's clock may run ahead of ours. */
export const CLOCK_SKEW_MS = 2 * 60 * 1000;
/** The longest an approval may be valid for. */
export const MAX_VALIDITY_MS = 72 * 3600 * 1000;

/** The run an approval must be bound to, as Postgres has it. */
export interface RunBinding extends RunEnqueuer {
  runId: string;
  target: string;
  status: string;
  planSha256: string | null;
  scope: PlanScope | null;
}

/**
 * submit: arrival at the endpoint (the run must be awaiting approval).
 * gate: the gate re-checks stored documents (still unexpired, run now running).
 * execute: the approvals were consumed in time; signatures, binding and allowance still hold.
 */
export type ValidationStage = 'submit' | 'gate' | 'execute';

export interface ValidApproval {
  envelope: ApprovalEnvelope;
  doc: ApprovalDocument;
  key: TrustedKey;
}

export interface ValidationContext {
  keys: TrustedKeys;
  run: RunBinding;
  now: Date;
  stage: ValidationStage;
}

/** Returns the valid approval, or throws the refusal (a CutterError with a table code) for the first failed rule. */
export function validateSovereignApproval(envelope: ApprovalEnvelope, ctx: ValidationContext): ValidApproval {
  return checkBinding(verifySigned(envelope, ctx.keys), ctx);
}

/** A document whose signature verifies with a trusted key, parsed; not yet checked against any run. */
export interface SignedDocument {
  envelope: ApprovalEnvelope;
  doc: ApprovalDocument;
  key: TrustedKey;
}

/**
 * The checks that need no database: trusted key, signature over the exact
 * bytes, strict parse. The endpoint runs them first, so a forged or
 * malformed request costs no Postgres round trip.
 */
export function verifySigned(envelope: ApprovalEnvelope, keys: TrustedKeys): SignedDocument {
  const key = verifyEnvelope(envelope, keys);
  return { envelope, doc: parseApprovalDocument(envelope.document), key };
}

/** The checks against the run as Postgres has it: binding, who enqueued it, times, allowance. */
export function checkBinding(signed: SignedDocument, ctx: Omit<ValidationContext, 'keys'>): ValidApproval {
  const { run } = ctx;
  const { doc, key } = signed;
  if (doc.runId !== run.runId) {
    throw refusal('APPROVAL_RUN_MISMATCH', `the document approves run ${doc.runId}, not run ${run.runId}`);
  }
  if (ctx.stage === 'submit' && run.status !== 'awaiting_approval') {
    throw refusal('APPROVAL_RUN_NOT_AWAITING', `run ${run.runId} is ${run.status}, not awaiting_approval: there is nothing to approve`);
  }
  if (doc.target !== run.target) {
    throw refusal('APPROVAL_TARGET_MISMATCH', `the document names target ${doc.target}; run ${run.runId} cuts target ${run.target}`);
  }
  if (run.planSha256 === null || doc.planSha256 !== run.planSha256) {
    throw refusal('APPROVAL_PLAN_MISMATCH', `the document approves plan ${doc.planSha256}; run ${run.runId}'s plan is ${run.planSha256 ?? '(none)'}`);
  }
  const self = sharedIdentity(key, run);
  if (self !== null) {
    throw refusal(
      'APPROVAL_SELF_APPROVAL',
      `key ${key.keyId} (${key.name}) belongs to ${self}, who enqueued run ${run.runId} (database login ${run.enqueuedBy}, operator ${run.operator}): no self-approval`,
    );
  }
  checkTimes(doc, ctx);
  if (doc.allowance.kind === 'plan') checkAllowanceCovers(doc.allowance, run);
  return signed;
}

function checkTimes(doc: ApprovalDocument, ctx: Omit<ValidationContext, 'keys'>): void {
  const signed = doc.signedUtc.getTime();
  const expires = doc.expiresUtc.getTime();
  if (expires <= signed) throw refusal('APPROVAL_VALIDITY_INVALID', 'expires_utc must be after signed_utc');
  if (expires - signed > MAX_VALIDITY_MS) {
    throw refusal('APPROVAL_VALIDITY_TOO_LONG', `the document is valid for ${((expires - signed) / 3600_000).toFixed(1)} h; at most 72 h is allowed`);
  }
  // Execute checks approvals the gate consumed while they were valid.
  if (ctx.stage === 'execute') return;
  const now = ctx.now.getTime();
  if (signed > now + CLOCK_SKEW_MS) {
    throw refusal('APPROVAL_NOT_YET_VALID', `signed_utc ${doc.signedUtc.toISOString()} is in the future (more than 2 minutes ahead of ${ctx.now.toISOString()})`);
  }
  if (expires <= now) throw refusal('APPROVAL_DOCUMENT_EXPIRED', `the document expired at ${doc.expiresUtc.toISOString()}`);
}

function checkAllowanceCovers(allowance: PlanAllowance, run: RunBinding): void {
  const scope = run.scope;
  if (!scope) throw refusal('APPROVAL_PLAN_MISMATCH', `run ${run.runId} has no plan to approve`);
  const excess = allowanceExcess(scope, allowance);
  if (!excess) return;
  if (excess.units !== null) {
    throw refusal('APPROVAL_ALLOWANCE_UNITS', `the plan changes ${excess.units} units; the allowance covers max_units=${allowance.maxUnits}`);
  }
  throw refusal('APPROVAL_ALLOWANCE_TRANSITIONS', `the plan uses ${excess.transitions.join(', ')}, which the allowance does not list`);
}
