import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Throwaway OpenPGP keys in a temporary GNUPGHOME, made with the real gpg.
 * Each call owns its directory (and the gpg-agent gpg starts for it); remove()
 * stops that agent through its own socket and deletes the directory.
 */
export interface TestKeyring {
  home: string;
  /** Primary key fingerprint, 40 hex upper case. */
  fpr: string;
  /** Key id of the encryption subkey (16 hex), when the key has one. */
  encryptionSubkeyId: string | undefined;
  /** A second keyring holding only the public key (what a backup host has). */
  publicOnly: () => TestKeyringDir;
  remove: () => void;
}

export interface TestKeyringDir {
  home: string;
  remove: () => void;
}

export interface TestKeyOptions {
  /** Made as of 2020 with a one-day lifetime: long expired. */
  expired?: boolean;
  /** Revoked with the revocation certificate gpg stored at creation. */
  revoked?: boolean;
  /** A signing-only key: no encryption subkey. */
  noEncryptionSubkey?: boolean;
  /** RSA-2048 primary and subkey instead of ed25519 + cv25519. */
  algorithm?: 'rsa2048';
}

function gpg(home: string, args: string[], input?: string | Buffer): string {
  return execFileSync('gpg', ['--batch', '--no-tty', '--homedir', home, ...args], {
    encoding: 'utf8',
    input: input ?? '',
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

function newHome(): TestKeyringDir {
  const home = mkdtempSync(join(tmpdir(), 'cutter-gpg-'));
  return {
    home,
    remove: () => {
      try {
        execFileSync('gpgconf', ['--homedir', home, '--kill', 'gpg-agent'], { stdio: 'ignore' });
      } catch {
        // No agent was started for this keyring.
      }
      rmSync(home, { recursive: true, force: true });
    },
  };
}

function keyIds(home: string, fpr: string): { fpr: string; sub: string | undefined } {
  const listing = gpg(home, ['--with-colons', '--fixed-list-mode', '--list-keys', fpr]);
  const lines = listing.split('\n').map((l) => l.split(':'));
  const sub = lines.find((f) => f[0] === 'sub' && (f[11] ?? '').includes('e'));
  return { fpr, sub: sub?.[4]?.toUpperCase() };
}

/** A fresh key pair (ed25519 primary + cv25519 encryption subkey, or RSA-2048 both, unless told otherwise). */
export function createTestKey(options: TestKeyOptions = {}): TestKeyring {
  const dir = newHome();
  const { home } = dir;
  const time = options.expired ? ['--faked-system-time', '20200101T000000'] : [];
  const rsa = options.algorithm === 'rsa2048';
  gpg(home, [...time, '--passphrase', '', '--quick-gen-key', 'cutter test <t@example.invalid>', rsa ? 'rsa2048' : 'ed25519', 'sign', '1d']);
  const fpr = gpg(home, ['--with-colons', '--list-keys'])
    .split('\n')
    .find((l) => l.startsWith('fpr:'))
    ?.split(':')[9]
    ?.toUpperCase();
  if (!fpr) throw new Error('gpg made no key');
  if (!options.noEncryptionSubkey) gpg(home, [...time, '--passphrase', '', '--quick-add-key', fpr, rsa ? 'rsa2048' : 'cv25519', 'encr', '1d']);
  if (options.revoked) {
    // gpg stores a revocation certificate at creation; its armour line is escaped with ':' against accidents.
    const cert = readFileSync(join(home, 'openpgp-revocs.d', `${fpr}.rev`), 'utf8').replace(/^:-----BEGIN/m, '-----BEGIN');
    gpg(home, ['--import'], cert);
  }
  const ids = keyIds(home, fpr);
  return {
    home,
    fpr,
    encryptionSubkeyId: ids.sub,
    publicOnly: () => {
      const pub = newHome();
      const exported = execFileSync('gpg', ['--batch', '--homedir', home, '--export', fpr]);
      gpg(pub.home, ['--import'], exported);
      return pub;
    },
    remove: dir.remove,
  };
}

/** An empty keyring (knows no key at all). */
export function createEmptyKeyring(): TestKeyringDir {
  const dir = newHome();
  gpg(dir.home, ['--list-keys']);
  return dir;
}
