import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { withFix } from '../backup/errors.js';
import { gpgBase, parseKeyListing, statusLines } from '../backup/gpg.js';
import { runTool } from '../backup/proc.js';
import { judgeRecipient, type RecipientCheck } from '../backup/recipient.js';

/**
 * The recipient-key half of the backup selftest, made to write nothing: gpg
 * normally takes a lock file beside the keyring, refreshes its random seed
 * after encrypting and creates an empty keybox in a home that has none.
 * These flags stop the first two; the third is avoided by not running gpg
 * at all against a home without a keyring.
 */
const NO_WRITE = ['--lock-never', '--no-random-seed-file', '--no-auto-check-trustdb', '--no-permission-warning'];

const fail = (code: 'GPG_MISSING' | 'GPG_KEY_UNKNOWN' | 'GPG_KEY_UNUSABLE', what: string): RecipientCheck => ({ ok: false, code, what, message: withFix(code, what) });

/** True when the home holds a keyring gpg would read (keybox or legacy). */
export function hasKeyring(home: string): boolean {
  return existsSync(join(home, 'pubring.kbx')) || existsSync(join(home, 'pubring.gpg'));
}

/**
 * Finds and judges the key as the backup runner would, then encrypts a few
 * bytes to it in memory (the output is discarded): a trial catches what a
 * listing cannot show. Nothing is written to GNUPGHOME or anywhere else.
 */
export async function checkRecipientNoWrite(home: string, fpr: string): Promise<RecipientCheck & { trialBytes?: number }> {
  if (!hasKeyring(home)) return fail('GPG_KEY_UNKNOWN', `GNUPGHOME ${home} holds no keyring, so no key with fingerprint ${fpr}`);
  const listing = await runTool('gpg', [...gpgBase(home), ...NO_WRITE, '--with-colons', '--fixed-list-mode', '--trust-model', 'always', '--list-keys', '--', fpr], {
    timeoutMs: 30_000,
  });
  if (listing.missing) return fail('GPG_MISSING', 'gpg is not on PATH');
  const listed = /^pub:/m.test(listing.stdout);
  // gpg exits 2 with "No public key" when nothing matches: an empty answer, not a failure.
  if (!listed && listing.code !== 0 && listing.code !== 2) {
    return fail('GPG_KEY_UNUSABLE', `gpg could not list key ${fpr}: ${listing.stderr.trim().split('\n').at(-1) ?? ''}`);
  }
  const judged = judgeRecipient(listed ? parseKeyListing(listing.stdout) : [], fpr);
  if (!judged.ok) return judged;
  const input = 'cutter readiness: trial encryption, discarded\n';
  const trial = await runTool(
    'gpg',
    [...gpgBase(home), ...NO_WRITE, '--no-auto-key-locate', '--trust-model', 'always', '--compress-algo', 'none', '--status-fd', '2', '--encrypt', '--recipient', fpr],
    { input, timeoutMs: 30_000 },
  );
  const status = statusLines(trial.stderr).map((s) => s.keyword);
  if (trial.code !== 0 || !status.includes('END_ENCRYPTION') || trial.stdout.length === 0) {
    const why = trial.stderr.split('\n').filter((l) => l.startsWith('gpg:')).at(-1) ?? `exit code ${String(trial.code)}`;
    return fail('GPG_KEY_UNUSABLE', `a trial encryption to ${fpr} failed: ${why}`);
  }
  return { ...judged, trialBytes: Buffer.byteLength(input) };
}
