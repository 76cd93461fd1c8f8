import { verify } from 'node:crypto';
import { z } from 'zod';
import type { TrustedKey, TrustedKeys } from './keys.js';
import { refusal } from './refusals.js';

/**
 * The envelope an approval travels in (DESIGN §3) and its signature check.
 * The signature is verified over the exact UTF-8 bytes of the document as
 * received, before the document is parsed: re-serialising "the same" text
 * would change the bytes (FIELD-NOTES).
 */

export interface ApprovalEnvelope {
  document: string;
  signature: string;
  key_id: string;
}

const envelopeSchema = z.strictObject({
  document: z.string(),
  signature: z.string(),
  key_id: z.string(),
});

const KEY_ID = /^[0-9a-f]{16}$/;
// 64 bytes of Ed25519 signature are exactly 86 base64 characters and "==".
const SIGNATURE_B64 = /^[A-Za-z0-9+/]{86}==$/;

/** Checks the envelope's shape: exactly document, signature and key_id, all strings. */
export function parseEnvelope(input: unknown): ApprovalEnvelope {
  const result = envelopeSchema.safeParse(input);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const where = issue?.path.length ? `"${issue.path.map(String).join('.')}"` : 'the body';
  const why =
    issue?.code === 'unrecognized_keys'
      ? `unknown field(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}`
      : issue?.code === 'invalid_type' && issue.path.length
        ? `${where} must be a string`
        : issue?.code === 'invalid_type'
          ? 'the body must be a JSON object'
          : `${where} is invalid`;
  throw refusal('APPROVAL_ENVELOPE_INVALID', `the envelope must be {"document", "signature", "key_id"}: ${why}`);
}

/** The 64 signature bytes; refuses anything but canonical padded base64 of exactly 64 bytes. */
export function decodeSignature(signature: string): Buffer {
  const bytes = SIGNATURE_B64.test(signature) ? Buffer.from(signature, 'base64') : null;
  if (!bytes || bytes.length !== 64 || bytes.toString('base64') !== signature) {
    throw refusal('APPROVAL_SIGNATURE_ENCODING', 'signature must be the base64 (with padding) of a 64-byte Ed25519 signature');
  }
  return bytes;
}

/** Finds the trusted key and verifies the signature; returns the signer. */
export function verifyEnvelope(envelope: ApprovalEnvelope, keys: TrustedKeys): TrustedKey {
  if (!KEY_ID.test(envelope.key_id)) {
    throw refusal('APPROVAL_KEY_ID_INVALID', 'key_id must be the first 16 lowercase hex digits of sha256 over the public key (SPKI DER)');
  }
  const signature = decodeSignature(envelope.signature);
  const key = keys.byId.get(envelope.key_id);
  if (!key) {
    // Never the server's key directory: a refusal goes to whoever posted.
    const why = keys.source === undefined ? 'no keys are trusted (SOVEREIGN_KEYS is not set)' : 'it is not among the trusted sovereign public keys';
    throw refusal('APPROVAL_KEY_UNKNOWN', `key ${envelope.key_id} is not a trusted sovereign key: ${why}`);
  }
  if (!verify(null, Buffer.from(envelope.document, 'utf8'), key.publicKey, signature)) {
    throw refusal('APPROVAL_SIGNATURE_INVALID', `the signature does not verify over the document with key ${key.keyId} (${key.name})`);
  }
  return key;
}
