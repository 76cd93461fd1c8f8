import { runTool } from './proc.js';

/**
 * What the backup runner asks of GnuPG. Everything is read from the
 * machine-readable forms (--with-colons, --status-fd, --list-packets), never
 * from translated human messages.
 */

/** Arguments every gpg call starts with: no prompts, no tty, the spec's keyring. */
export function gpgBase(gnupgHome: string | undefined): string[] {
  return ['--batch', '--no-tty', ...(gnupgHome ? ['--homedir', gnupgHome] : [])];
}

/**
 * Encrypt stdin to stdout for one recipient. --compress-algo none because
 * pg_dump -Fc output is already zlib-compressed: gpg compressing it again costs
 * CPU for nothing. --trust-model always because the operator's key is named by
 * its full fingerprint, which is the trust decision; a web of trust adds none.
 */
export function encryptArgs(gnupgHome: string | undefined, fpr: string): string[] {
  return [
    ...gpgBase(gnupgHome),
    '--no-auto-key-locate',
    '--trust-model', 'always',
    '--compress-algo', 'none',
    '--status-fd', '2',
    '--encrypt',
    '--recipient', fpr,
  ];
}

/** Decrypt stdin (or a file) to stdout, with status lines on stderr. */
export function decryptArgs(gnupgHome: string | undefined, file: string): string[] {
  return [...gpgBase(gnupgHome), '--status-fd', '2', '--decrypt', '--', file];
}

/** The `[GNUPG:] KEYWORD args` lines of a status stream. */
export function statusLines(stderr: string): { keyword: string; args: string[] }[] {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('[GNUPG:] '))
    .map((l) => {
      const [keyword = '', ...args] = l.slice('[GNUPG:] '.length).trim().split(' ');
      return { keyword, args };
    });
}

/** gpg's version, or undefined when it is not on PATH or does not run. */
export async function gpgVersion(): Promise<string | undefined> {
  const result = await runTool('gpg', ['--batch', '--version'], { timeoutMs: 15_000 });
  if (result.missing || result.code !== 0) return undefined;
  return /^gpg \(GnuPG\) (\S+)/m.exec(result.stdout)?.[1] ?? 'unknown';
}

export interface GpgKey {
  keyId: string;
  fpr: string;
  /** The validity letter: r revoked, e expired, i invalid, n not valid, d disabled, others usable. */
  validity: string;
  created: Date;
  expires: Date | null;
  /** This key's own capabilities (lower case letters of field 12). */
  caps: string;
}

export interface GpgKeyBlock {
  primary: GpgKey;
  /** Primary-level capability summary (upper case letters; D = disabled). */
  overallCaps: string;
  subkeys: GpgKey[];
}

function epoch(value: string | undefined): Date | null {
  if (!value) return null;
  // gpg prints seconds since the epoch, or an ISO form with --fixed-list-mode off.
  if (/^\d+$/.test(value)) return new Date(Number(value) * 1000);
  const parsed = new Date(value);
  return Number.isNaN(parsed.getTime()) ? null : parsed;
}

/** Parses `gpg --with-colons --fixed-list-mode --list-keys` output into key blocks. */
export function parseKeyListing(text: string): GpgKeyBlock[] {
  const blocks: GpgKeyBlock[] = [];
  let current: GpgKey | undefined;
  for (const line of text.split('\n')) {
    const f = line.split(':');
    const type = f[0];
    if (type === 'pub' || type === 'sub') {
      current = {
        keyId: (f[4] ?? '').toUpperCase(),
        fpr: '',
        validity: f[1] ?? '',
        created: epoch(f[5]) ?? new Date(0),
        expires: epoch(f[6]),
        caps: (f[11] ?? '').replace(/[A-Z]/g, ''),
      };
      if (type === 'pub') blocks.push({ primary: current, overallCaps: (f[11] ?? '').replace(/[a-z]/g, ''), subkeys: [] });
      else blocks.at(-1)?.subkeys.push(current);
    } else if (type === 'fpr' && current && current.fpr === '') {
      current.fpr = (f[9] ?? '').toUpperCase();
    } else if (type !== 'fpr') {
      // uid, tru, grp ... : a fpr line after these belongs to nothing we track.
      if (type === 'uid' || type === 'uat') current = undefined;
    }
  }
  return blocks;
}

/** The key blocks gpg lists for a fingerprint (empty when the keyring does not hold it). */
export async function listKeys(
  gnupgHome: string | undefined,
  fpr: string,
  secret = false,
): Promise<{ ok: true; blocks: GpgKeyBlock[]; raw: string } | { ok: false; missing: boolean; stderr: string }> {
  const result = await runTool(
    'gpg',
    [
      ...gpgBase(gnupgHome),
      '--with-colons', '--fixed-list-mode', '--trust-model', 'always',
      secret ? '--list-secret-keys' : '--list-keys', '--', fpr,
    ],
    { timeoutMs: 30_000 },
  );
  if (result.missing) return { ok: false, missing: true, stderr: result.stderr };
  // gpg exits 2 with "No public key" when nothing matches: that is an empty answer, not a failure.
  if (result.code !== 0 && !/^(pub|sec):/m.test(result.stdout)) {
    if (result.code === 2) return { ok: true, blocks: [], raw: result.stdout };
    return { ok: false, missing: false, stderr: result.stderr };
  }
  return { ok: true, blocks: parseKeyListing(result.stdout.replace(/^sec:/gm, 'pub:').replace(/^ssb:/gm, 'sub:')), raw: result.stdout };
}

const UNUSABLE_VALIDITY = new Set(['r', 'e', 'i', 'n', 'd']);

/** A key (or subkey) gpg would encrypt to right now. */
export function canEncryptNow(key: GpgKey, now: Date): boolean {
  return (
    key.caps.includes('e') &&
    !UNUSABLE_VALIDITY.has(key.validity) &&
    (key.expires === null || key.expires.getTime() > now.getTime()) &&
    key.created.getTime() <= now.getTime() + 60_000
  );
}

/**
 * The 16-hex key ids named by the public-key-encrypted session key packets of
 * a file, or of the first bytes of one (those packets come first, so the head
 * of a stream is enough and the listing can run while the rest is written).
 */
export async function packetRecipients(
  gnupgHome: string | undefined,
  source: { file: string } | { head: Buffer },
): Promise<{ ok: true; keyIds: string[] } | { ok: false; missing: boolean; stderr: string }> {
  // --list-only skips the decryption pass: the listing costs no secret key and
  // no passphrase. Without the secret key (or on a truncated head) gpg may
  // still exit 2 after printing the packets, so the packets decide, not the exit code.
  const args = [...gpgBase(gnupgHome), '--list-only', '--list-packets', ...('file' in source ? ['--', source.file] : [])];
  const result = await runTool('gpg', args, { timeoutMs: 120_000, ...('head' in source ? { input: source.head } : {}) });
  if (result.missing) return { ok: false, missing: true, stderr: result.stderr };
  const keyIds = [...result.stdout.matchAll(/^:pubkey enc packet: .*\bkeyid ([0-9A-Fa-f]{16})\b/gm)].map((m) =>
    (m[1] ?? '').toUpperCase(),
  );
  if (keyIds.length === 0) return { ok: false, missing: false, stderr: result.stderr || 'no public-key encrypted session key packet' };
  return { ok: true, keyIds };
}

/** Whether this keyring holds the secret part of the (sub)key with this 16-hex id, usable here (not a card stub). */
export async function hasSecretSubkey(gnupgHome: string | undefined, fpr: string, keyId: string): Promise<boolean> {
  const result = await runTool(
    'gpg',
    [...gpgBase(gnupgHome), '--with-colons', '--fixed-list-mode', '--list-secret-keys', '--', fpr],
    { timeoutMs: 30_000 },
  );
  if (result.missing || result.code !== 0) return false;
  return result.stdout.split('\n').some((line) => {
    const f = line.split(':');
    // Field 15 is '#' for a stub whose secret part is offline or on a card we cannot use here.
    return (f[0] === 'sec' || f[0] === 'ssb') && (f[4] ?? '').toUpperCase() === keyId && f[14] !== '#';
  });
}
