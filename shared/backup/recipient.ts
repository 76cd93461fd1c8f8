import { type BackupErrorCode, withFix } from './errors.js';
import { canEncryptNow, encryptArgs, listKeys, statusLines, type GpgKey, type GpgKeyBlock } from './gpg.js';
import { runTool } from './proc.js';

/** The recipient key as the runner will use it. */
export interface RecipientKey {
  fpr: string;
  /** The encryption subkey gpg picks (the newest usable one), 16 hex. */
  subkeyId: string;
  /** Every usable encryption (sub)key id: a file encrypted to any of them is for this recipient. */
  encryptionKeyIds: string[];
  expires: Date | null;
}

/** A failed check carries the bare problem (`what`) and the message with its fix. */
export type RecipientCheck =
  | { ok: true; key: RecipientKey; message: string }
  | { ok: false; code: BackupErrorCode; what: string; message: string };

const fail = (code: BackupErrorCode, what: string): RecipientCheck => ({ ok: false, code, what, message: withFix(code, what) });

const day = (d: Date) => d.toISOString().slice(0, 10);

/**
 * Judges a keyring listing for one fingerprint. Fail closed: anything gpg
 * marks as not valid, or whose dates say so, is refused, even where gpg itself
 * might still encrypt.
 */
export function judgeRecipient(blocks: GpgKeyBlock[], fpr: string, now = new Date()): RecipientCheck {
  const block = blocks.find((b) => b.primary.fpr === fpr);
  if (!block) {
    if (blocks.some((b) => b.subkeys.some((s) => s.fpr === fpr))) {
      return fail('GPG_KEY_UNKNOWN', `${fpr} is the fingerprint of a subkey, not of a primary key`);
    }
    return fail('GPG_KEY_UNKNOWN', `no public key with fingerprint ${fpr} in the keyring`);
  }
  const p = block.primary;
  if (p.validity === 'r') return fail('GPG_KEY_REVOKED', `key ${fpr} is revoked`);
  if (p.validity === 'e' || (p.expires && p.expires.getTime() <= now.getTime())) {
    return fail('GPG_KEY_EXPIRED', `key ${fpr} expired${p.expires ? ` on ${day(p.expires)}` : ''}`);
  }
  if (block.overallCaps.includes('D') || p.validity === 'd') return fail('GPG_KEY_UNUSABLE', `key ${fpr} is disabled in this keyring`);
  if (p.validity === 'i' || p.validity === 'n') return fail('GPG_KEY_UNUSABLE', `gpg marks key ${fpr} as not valid (validity ${p.validity})`);

  const candidates: GpgKey[] = [...block.subkeys, p].filter((k) => canEncryptNow(k, now));
  if (candidates.length === 0) {
    const encrypting = block.subkeys.filter((s) => s.caps.includes('e'));
    return fail(
      'GPG_NO_ENCRYPTION_SUBKEY',
      encrypting.length === 0
        ? `key ${fpr} has no encryption-capable subkey`
        : `every encryption subkey of ${fpr} is expired or revoked (${encrypting.map((s) => s.keyId).join(', ')})`,
    );
  }
  // gpg encrypts to the newest usable encryption subkey.
  const chosen = candidates.reduce((a, b) => (b.created.getTime() > a.created.getTime() ? b : a));
  const expiries = [p.expires, chosen.expires].filter((d): d is Date => d !== null);
  const expires = expiries.length ? new Date(Math.min(...expiries.map((d) => d.getTime()))) : null;
  return {
    ok: true,
    key: { fpr, subkeyId: chosen.keyId, encryptionKeyIds: candidates.map((k) => k.keyId), expires },
    message: `key ${fpr}, encryption subkey ${chosen.keyId}, ${expires ? `valid until ${day(expires)}` : 'no expiry'}`,
  };
}

/**
 * Finds the recipient key, judges it, and (with trial) proves gpg will
 * actually encrypt to it: a trial on a few bytes catches what a listing cannot
 * show. The backup itself skips the trial, since its own encryption is one.
 */
export async function checkRecipient(gnupgHome: string | undefined, fpr: string, options: { trial: boolean } = { trial: true }): Promise<RecipientCheck> {
  const listed = await listKeys(gnupgHome, fpr);
  if (!listed.ok) {
    if (listed.missing) return fail('GPG_MISSING', 'gpg is not on PATH');
    return fail('GPG_KEY_UNUSABLE', `gpg could not list key ${fpr}: ${listed.stderr.trim().split('\n').at(-1) ?? ''}`);
  }
  const judged = judgeRecipient(listed.blocks, fpr);
  if (!judged.ok || !options.trial) return judged;
  const trial = await runTool('gpg', encryptArgs(gnupgHome, fpr), { input: 'cutter backup selftest\n', timeoutMs: 30_000 });
  const status = statusLines(trial.stderr).map((s) => s.keyword);
  if (trial.code !== 0 || !status.includes('END_ENCRYPTION') || trial.stdout.length === 0) {
    const why = trial.stderr.split('\n').filter((l) => l.startsWith('gpg:')).at(-1) ?? `exit code ${String(trial.code)}`;
    return fail('GPG_KEY_UNUSABLE', `a trial encryption to ${fpr} failed: ${why}`);
  }
  return judged;
}
