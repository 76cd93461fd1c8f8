import { createPrivateKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { CutterError } from '../errors.js';
import type { AllowanceKind } from '../units/lifecycle.js';
import { REJECT_REASON, serialiseApprovalDocument, type ApprovalDocument, type ApprovalGate } from './document.js';
import type { ApprovalEnvelope } from './envelope.js';
import { keyIdOf } from './keys.js';
import { MAX_VALIDITY_MS } from './validate.js';

/**
 * The sovereign's side: key pairs, documents and signatures. It runs where
 * the private key is (offline, with the CLI), never in the board or workers.
 */

/** A new Ed25519 key pair as PEM (private PKCS#8, public SPKI) and its key id. */
export function generateSovereignKey(): { privatePem: string; publicPem: string; keyId: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    keyId: keyIdOf(publicKey),
  };
}

/** Reads an Ed25519 private key from PEM; refuses anything else. */
export function readPrivateKey(pem: string, file: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch (err) {
    throw new CutterError('KEY_UNREADABLE', `${file} is not a readable private key (${(err as Error).message})`, { kind: 'bad_input' });
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new CutterError('KEY_UNREADABLE', `${file} is a ${key.asymmetricKeyType ?? 'unknown'} key; approvals are signed with Ed25519`, { kind: 'bad_input' });
  }
  return key;
}

/** What a run needs approved, as the run API reports it. */
export interface ApprovalRequest {
  gate: ApprovalGate;
  runId: string;
  target: string;
  planSha256: string;
  /** The SG_1 allowance to sign (ignored for EXEC and REJECT). */
  maxUnits: number;
  transitions: AllowanceKind[];
  /** A rejection's reason (REJECT only). */
  reason?: string;
}

/** The document for a request, signed now (whole seconds) and valid for ttlS seconds (at most 72 h). */
export function buildDocument(req: ApprovalRequest, options: { now?: Date; ttlS: number; nonce?: string }): ApprovalDocument {
  if (options.ttlS * 1000 > MAX_VALIDITY_MS || options.ttlS < 1) {
    throw new CutterError('DURATION_INVALID', 'an approval is valid for 1 s to 72 h', { kind: 'bad_input' });
  }
  const signedUtc = new Date(Math.floor((options.now ?? new Date()).getTime() / 1000) * 1000);
  return {
    gate: req.gate,
    runId: req.runId,
    target: req.target,
    planSha256: req.planSha256,
    signedUtc,
    expiresUtc: new Date(signedUtc.getTime() + options.ttlS * 1000),
    allowance: allowanceOf(req),
    nonce: options.nonce ?? randomBytes(16).toString('hex'),
  };
}

/** Signs the exact text and wraps it in the envelope of DESIGN §3. */
export function signDocument(text: string, privateKey: KeyObject): ApprovalEnvelope {
  return {
    document: text,
    signature: sign(null, Buffer.from(text, 'utf8'), privateKey).toString('base64'),
    key_id: keyIdOf(privateKey),
  };
}

/** Builds, serialises and signs in one step. */
export function signApproval(req: ApprovalRequest, privateKey: KeyObject, options: { now?: Date; ttlS: number; nonce?: string }): ApprovalEnvelope {
  return signDocument(serialiseApprovalDocument(buildDocument(req, options)), privateKey);
}

function allowanceOf(req: ApprovalRequest): ApprovalDocument['allowance'] {
  if (req.gate === 'EXEC') return { kind: 'exec' };
  if (req.gate === 'REJECT') {
    if (req.reason === undefined || !REJECT_REASON.test(req.reason) || req.reason !== req.reason.trim()) {
      throw new CutterError('REASON_INVALID', 'a rejection needs a reason of 1-200 printable ASCII characters, without edge spaces', { kind: 'bad_input' });
    }
    return { kind: 'reject', reason: req.reason };
  }
  return { kind: 'plan', maxUnits: req.maxUnits, transitions: req.transitions };
}
