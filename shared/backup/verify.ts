import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { BackupRunnerError, type BackupErrorCode, withFix } from './errors.js';
import { decryptInto } from './decrypt.js';
import { dropDatabaseAt } from './database.js';
import type { FingerprintDiff } from './fingerprint.js';
import { hasSecretSubkey, listKeys, packetRecipients } from './gpg.js';
import { checkIntegrity } from './integrity.js';
import { manifestPathFor, readManifest, type BackupManifest } from './manifest.js';
import { databaseName } from './pgtools.js';
import { restoreChecked } from './restore.js';

export interface VerifyCheck {
  name: string;
  ok: boolean;
  /** The check could not apply here (no secret key for the full read); it did not fail. */
  skipped?: boolean;
  code?: string;
  message: string;
}

export interface DrillReport {
  database: string;
  tables: number;
  mismatches: FingerprintDiff[];
  /** The drill database was created for the drill and dropped afterwards. */
  dropped: boolean;
}

export interface VerifyReport {
  ok: boolean;
  file: string;
  manifestFile: string;
  checks: VerifyCheck[];
  drill: DrillReport | null;
}

export interface VerifyOptions {
  gnupgHome?: string | undefined;
  /** Restore into this (new or empty) database and compare every table's fingerprint with the manifest. */
  drillUrl?: string | undefined;
}

const pass = (name: string, message: string): VerifyCheck => ({ name, ok: true, message });
const fail = (name: string, code: BackupErrorCode, what: string): VerifyCheck => ({ name, ok: false, code, message: withFix(code, what) });

/**
 * Checks a backup file against its manifest: size and sha256, the recipient
 * in its packets (no private key needed), a full read of the decrypted dump
 * when the private key is here, and with drillUrl a restore whose table
 * fingerprints must equal the manifest's. Never throws for a failed check.
 */
export async function verifyBackup(file: string, options: VerifyOptions = {}): Promise<VerifyReport> {
  const path = resolve(file);
  const checks: VerifyCheck[] = [];
  const report = (drill: DrillReport | null = null): VerifyReport => ({
    ok: checks.length > 0 && checks.every((c) => c.ok),
    file: path,
    manifestFile: manifestPathFor(path),
    checks,
    drill,
  });

  const exists = await stat(path).then((s) => s.isFile(), () => false);
  if (!exists) {
    checks.push(fail('file', 'BACKUP_FILE_MISSING', `no backup file ${path}`));
    return report();
  }
  let manifest: BackupManifest;
  try {
    manifest = await readManifest(path);
    checks.push(pass('manifest', `${manifest.file}: ${manifest.database}, ${manifest.tables.length} table(s), taken ${manifest.finished_utc}`));
  } catch (err) {
    if (!(err instanceof BackupRunnerError)) throw err;
    checks.push({ name: 'manifest', ok: false, code: err.code, message: err.message });
    return report();
  }

  // Independent reads (the file's bytes, its packets, the keyring), side by side; reported in this order.
  const [integrity, recipient, secret] = await Promise.all([
    checkIntegrity(path, manifest),
    recipientCheck(path, manifest, options.gnupgHome),
    hasSecretSubkey(options.gnupgHome, manifest.recipient_fpr, manifest.encryption_subkey_id),
  ]);
  for (const c of integrity) checks.push(c.ok || !c.code ? pass(c.name, c.what) : fail(c.name, c.code, c.what));
  checks.push(recipient);
  if (secret) {
    checks.push(await fullReadCheck(path, options.gnupgHome));
  } else {
    checks.push({
      name: 'full read',
      ok: true,
      skipped: true,
      message: `skipped: the secret key of subkey ${manifest.encryption_subkey_id} is not in this keyring (the sha256 stands guard instead)`,
    });
  }

  if (options.drillUrl === undefined) return report();
  const earlier = checks.find((c) => !c.ok);
  if (earlier) {
    // A file that failed a check is never restored anywhere, not even into a scratch database.
    checks.push({ name: 'drill', ok: false, code: earlier.code ?? 'BACKUP_VERIFY_READ', message: `not attempted: the ${earlier.name} check failed` });
    return report();
  }
  if (!secret) {
    checks.push(fail('drill', 'GPG_SECRET_KEY_MISSING', `a drill decrypts the file, and the secret key of ${manifest.encryption_subkey_id} is not here`));
    return report();
  }
  return report(await drill(path, manifest, options.drillUrl, options.gnupgHome, checks));
}

async function recipientCheck(file: string, manifest: BackupManifest, gnupgHome: string | undefined): Promise<VerifyCheck> {
  const packets = await packetRecipients(gnupgHome, { file });
  if (!packets.ok) {
    if (packets.missing) return fail('recipient', 'GPG_MISSING', 'gpg is not on PATH');
    return fail('recipient', 'BACKUP_VERIFY_RECIPIENT', `gpg finds no encrypted session key in the file: ${packets.stderr.trim().split('\n').at(-1) ?? ''}`);
  }
  const expected = manifest.encryption_subkey_id;
  if (packets.keyIds.length !== 1 || packets.keyIds[0] !== expected) {
    return fail('recipient', 'BACKUP_VERIFY_RECIPIENT', `the file is encrypted to ${packets.keyIds.join(', ')}, the manifest says ${expected}`);
  }
  // When the public key is here, the subkey must also belong to the manifest's recipient.
  const listed = await listKeys(gnupgHome, manifest.recipient_fpr);
  const block = listed.ok ? listed.blocks.find((b) => b.primary.fpr === manifest.recipient_fpr) : undefined;
  if (!block) return pass('recipient', `encrypted to subkey ${expected} (the public key of ${manifest.recipient_fpr} is not in this keyring to cross-check)`);
  if (![block.primary, ...block.subkeys].some((k) => k.keyId === expected)) {
    return fail('recipient', 'BACKUP_VERIFY_RECIPIENT', `subkey ${expected} does not belong to key ${manifest.recipient_fpr}`);
  }
  return pass('recipient', `encrypted to subkey ${expected} of ${manifest.recipient_fpr}`);
}

/** Decrypts the whole file and has pg_restore read every block of it (not only the table of contents). */
async function fullReadCheck(file: string, gnupgHome: string | undefined): Promise<VerifyCheck> {
  const outcome = await decryptInto(file, gnupgHome, { command: 'pg_restore', args: ['--file', '/dev/null'] });
  if (outcome.ok) return pass('full read', 'decrypted and read to the end by pg_restore');
  if (outcome.part === 'gpg-missing') return fail('full read', 'GPG_MISSING', 'gpg is not on PATH');
  if (outcome.part === 'consumer-missing') return fail('full read', 'PG_DUMP_MISSING', 'pg_restore is not on PATH');
  return fail('full read', 'BACKUP_VERIFY_READ', outcome.detail);
}

async function drill(
  file: string,
  manifest: BackupManifest,
  drillUrl: string,
  gnupgHome: string | undefined,
  checks: VerifyCheck[],
): Promise<DrillReport | null> {
  const database = databaseName(drillUrl);
  try {
    const restored = await restoreChecked(file, manifest, { into: drillUrl, gnupgHome });
    // A scratch database made for the drill is removed; one the operator provided is left for inspection.
    if (restored.created) await dropDatabaseAt(drillUrl);
    const result: DrillReport = { database, tables: restored.tables.length, mismatches: restored.mismatches, dropped: restored.created };
    checks.push(
      restored.mismatches.length === 0
        ? pass('drill', `restored into ${database}: ${restored.tables.length} table(s), every fingerprint equals the manifest's`)
        : fail('drill', 'BACKUP_DRILL_MISMATCH', `restored into ${database}, but ${restored.mismatches.map((m) => m.name).join(', ')} differ`),
    );
    return result;
  } catch (err) {
    if (!(err instanceof BackupRunnerError)) throw err;
    checks.push({ name: 'drill', ok: false, code: err.code, message: err.message });
    return null;
  }
}
