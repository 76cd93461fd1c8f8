import { describe, expect, it } from 'vitest';
import { keyIdentities } from '../../shared/approval/identity.js';
import type { TrustedKeys } from '../../shared/approval/keys.js';
import { APPROVAL_REFUSAL_STATUS, httpStatusFor } from '../../shared/approval/refusals.js';
import { validateSovereignApproval, type RunBinding, type ValidationStage } from '../../shared/approval/validate.js';
import { errorCode } from '../../shared/errors.js';
import { documentText, envelopeOf, FIXED_NOW, FIXED_RUN, fieldsFor, makeKey, utc, type DocFields, type Envelope } from '../support/sovereign.js';
import { createPublicKey } from 'node:crypto';

const alice = makeKey('alice');
const bob = makeKey('bob');
const operatorKey = makeKey('tester');
const stranger = makeKey('stranger');
const keys: TrustedKeys = {
  source: '/keys',
  byId: new Map(
    [alice, bob, operatorKey].map((k) => [
      k.keyId,
      { keyId: k.keyId, name: k.name, identities: keyIdentities(k.name), publicKey: createPublicKey(k.privateKey), file: `/keys/${k.name}.pem` },
    ]),
  ),
};
const now = FIXED_NOW;
const run: RunBinding = { ...FIXED_RUN, scope: { ...FIXED_RUN.scope, transitions: [...FIXED_RUN.scope.transitions] } };
const signable = { runId: run.runId, target: run.target, planSha256: run.planSha256 ?? '' };

function fields(gate: 'SG_1' | 'EXEC', over: Partial<DocFields> = {}): DocFields {
  return fieldsFor(signable, gate, {
    signed_utc: utc(new Date(now.getTime() - 60_000)),
    expires_utc: utc(new Date(now.getTime() + 3600_000)),
    ...over,
  });
}

function verdict(envelope: Envelope, options: { stage?: ValidationStage; run?: Partial<RunBinding> } = {}): string {
  try {
    validateSovereignApproval(envelope, { keys, run: { ...run, ...options.run }, now, stage: options.stage ?? 'submit' });
    return 'valid';
  } catch (err) {
    return errorCode(err);
  }
}

const signed = (f: DocFields, key = alice) => envelopeOf(documentText(f), key);

describe('validate_sovereign_approval', () => {
  it('accepts a valid SG_1 approval and a valid EXEC grant', () => {
    const valid = validateSovereignApproval(signed(fields('SG_1')), { keys, run, now, stage: 'submit' });
    expect(valid.key.name).toBe('alice');
    expect(valid.doc.gate).toBe('SG_1');
    expect(verdict(signed(fields('EXEC'), bob))).toBe('valid');
  });

  const H = 3600_000;
  const at = (ms: number) => utc(new Date(now.getTime() + ms));
  const cases: [string, () => Envelope, string, Partial<RunBinding>?][] = [
    ['an unknown key', () => signed(fields('SG_1'), stranger), 'APPROVAL_KEY_UNKNOWN'],
    ['a signature by another key', () => envelopeOf(documentText(fields('SG_1')), bob, alice.keyId), 'APPROVAL_SIGNATURE_INVALID'],
    ['one changed byte', () => {
      const e = signed(fields('SG_1'));
      return { ...e, document: e.document.replace('max_units=500', 'max_units=600') };
    }, 'APPROVAL_SIGNATURE_INVALID'],
    ['a key_id in uppercase', () => ({ ...signed(fields('SG_1')), key_id: alice.keyId.toUpperCase() }), 'APPROVAL_KEY_ID_INVALID'],
    ['malformed base64', () => ({ ...signed(fields('SG_1')), signature: 'not base64!' }), 'APPROVAL_SIGNATURE_ENCODING'],
    ['a signature of the wrong length', () => ({ ...signed(fields('SG_1')), signature: Buffer.alloc(32).toString('base64') }), 'APPROVAL_SIGNATURE_ENCODING'],
    ['unpadded base64', () => {
      const e = signed(fields('SG_1'));
      return { ...e, signature: e.signature.replace(/=+$/, '') };
    }, 'APPROVAL_SIGNATURE_ENCODING'],
    ['another run', () => signed(fields('SG_1', { run_id: 'run-20261124-095000-bbbbbb' })), 'APPROVAL_RUN_MISMATCH'],
    ['another target', () => signed(fields('SG_1', { target: 'icx-const' })), 'APPROVAL_TARGET_MISMATCH'],
    ['another plan', () => signed(fields('SG_1', { plan_sha256: 'ef'.repeat(32) })), 'APPROVAL_PLAN_MISMATCH'],
    ['a run not awaiting approval', () => signed(fields('SG_1')), 'APPROVAL_RUN_NOT_AWAITING', { status: 'running' }],
    ['self-approval', () => signed(fields('SG_1'), operatorKey), 'APPROVAL_SELF_APPROVAL'],
    ['signed 3 minutes in the future', () => signed(fields('SG_1', { signed_utc: at(180_000), expires_utc: at(H) })), 'APPROVAL_NOT_YET_VALID'],
    ['expired a second ago', () => signed(fields('SG_1', { signed_utc: at(-H), expires_utc: at(-1000) })), 'APPROVAL_DOCUMENT_EXPIRED'],
    ['valid for 72 h and one second', () => signed(fields('SG_1', { signed_utc: at(-60_000), expires_utc: at(72 * H - 60_000 + 1000) })), 'APPROVAL_VALIDITY_TOO_LONG'],
    ['expiring before it was signed', () => signed(fields('SG_1', { signed_utc: at(60_000), expires_utc: at(30_000) })), 'APPROVAL_VALIDITY_INVALID'],
    ['an allowance one unit too small', () => signed(fields('SG_1', { allowance: 'max_units=54; transitions=draft->enacted,new->draft,revise' })), 'APPROVAL_ALLOWANCE_UNITS'],
    ['an allowance missing a transition', () => signed(fields('SG_1', { allowance: 'max_units=55; transitions=draft->enacted,new->draft' })), 'APPROVAL_ALLOWANCE_TRANSITIONS'],
  ];
  it.each(cases)('refuses %s', (_what, make, code, runOver) => {
    expect(verdict(make(), runOver ? { run: runOver } : {})).toBe(code);
  });

  it('takes 2 minutes of clock skew and exactly 72 h of validity', () => {
    expect(verdict(signed(fields('SG_1', { signed_utc: at(119_000), expires_utc: at(H) })))).toBe('valid');
    expect(verdict(signed(fields('SG_1', { signed_utc: at(-60_000), expires_utc: at(72 * H - 60_000) })))).toBe('valid');
    expect(verdict(signed(fields('SG_1', { allowance: 'max_units=55; transitions=revise,new->draft,draft->enacted' })))).toBe('valid');
  });

  it('at execute ignores expiry (the gate consumed it in time) but not binding or allowance', () => {
    const old = signed(fields('SG_1', { signed_utc: at(-2 * H), expires_utc: at(-H) }));
    expect(verdict(old, { stage: 'gate' })).toBe('APPROVAL_DOCUMENT_EXPIRED');
    expect(verdict(old, { stage: 'execute', run: { status: 'running' } })).toBe('valid');
    expect(verdict(old, { stage: 'execute', run: { status: 'running', scope: { unitCount: 501, transitions: [] } } })).toBe('APPROVAL_ALLOWANCE_UNITS');
  });

  it('maps every refusal code to a status of DESIGN §5', () => {
    for (const [code, status] of Object.entries(APPROVAL_REFUSAL_STATUS)) {
      expect([400, 403, 404, 409, 413, 415, 422, 429]).toContain(status);
      expect(httpStatusFor(code)).toBe(status);
    }
    expect(httpStatusFor('SOMETHING_ELSE')).toBe(500);
  });
});
