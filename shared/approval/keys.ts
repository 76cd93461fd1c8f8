import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { CutterError, coerceError } from '../errors.js';
import { readIdentityMap } from './identities-file.js';
import { keyIdentities } from './identity.js';

/**
 * The sovereign's trusted public keys (DESIGN §3, §6): SOVEREIGN_KEYS names a
 * PEM file with one or more SPKI public keys, or a directory of `.pem` files.
 * A key's name is its file name without `.pem`. Its identities (whose key it
 * is, for the no-self-approval rule) are its name and, in a directory, what
 * identities.json maps the name to (identities-file.ts).
 */

export interface TrustedKey {
  /** First 16 hex digits of sha256 over the SPKI DER. */
  keyId: string;
  name: string;
  /** Whose key it is, normalised (identity.ts): its name and its identities.json entry. */
  identities: readonly string[];
  publicKey: KeyObject;
  file: string;
}

/** A key as its file holds it, before identities.json is applied. */
type FileKey = Omit<TrustedKey, 'identities'>;

export interface TrustedKeys {
  /** Where the keys came from; undefined when SOVEREIGN_KEYS is not set. */
  source: string | undefined;
  byId: ReadonlyMap<string, TrustedKey>;
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;

/** The key id of DESIGN §3 for a public (or private: its public half) Ed25519 key. */
export function keyIdOf(key: KeyObject): string {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('hex').slice(0, 16);
}

/** Loads and checks every trusted key; a bad key file stops with SOVEREIGN_KEYS_INVALID naming it, a bad identities.json with SOVEREIGN_IDENTITIES_INVALID. */
export function loadTrustedKeys(source: string | undefined): Promise<TrustedKeys> {
  try {
    return Promise.resolve(readTrustedKeys(source));
  } catch (err) {
    return Promise.reject(coerceError(err));
  }
}

/**
 * The same, synchronously: what a long-lived process reads at each use, so a
 * key copied into (or removed from) SOVEREIGN_KEYS counts at once, without a
 * restart. Cheap: a file is parsed again only when its text changed.
 */
export function readTrustedKeys(source: string | undefined): TrustedKeys {
  if (source === undefined) return { source, byId: new Map() };
  // Small local files, read synchronously: the gate reads them on every wake,
  // and thread-pool round trips cost more than the reads.
  const info = statSync(source, { throwIfNoEntry: false });
  if (!info) throw invalid(`SOVEREIGN_KEYS names ${source}, which does not exist`);
  const directory = info.isDirectory();
  const files = directory
    ? readdirSync(source).filter((n) => n.endsWith('.pem')).sort().map((n) => join(source, n))
    : [source];
  const fileKeys = new Map<string, FileKey>();
  for (const file of files) {
    for (const key of keysInFile(file)) {
      const twin = fileKeys.get(key.keyId);
      if (twin) throw invalid(`the key ${key.keyId} appears twice (${twin.file} and ${key.file}): one key, one name`);
      fileKeys.set(key.keyId, key);
    }
  }
  if (fileKeys.size === 0) throw invalid(`SOVEREIGN_KEYS (${source}) holds no public keys`);
  const mapped = directory ? readIdentityMap(source, new Set([...fileKeys.values()].map((k) => k.name))) : new Map<string, string[]>();
  const byId = new Map<string, TrustedKey>();
  for (const [keyId, key] of fileKeys) byId.set(keyId, { ...key, identities: keyIdentities(key.name, mapped.get(key.name)) });
  return { source, byId };
}

/**
 * Parsed keys by file, reused while the file's text is byte for byte the
 * same: the gate reads SOVEREIGN_KEYS on every wake, and turning each PEM
 * into a key object and its key id again cost most of a millisecond of the
 * approval's path. The file is still read every time, so a key removed or
 * replaced stops counting at the next read (a stamp such as size and mtime
 * would not do: every Ed25519 PEM has the same size, and mtimes can be coarse).
 */
const parsed = new Map<string, { text: string; keys: FileKey[] }>();

function keysInFile(file: string): FileKey[] {
  const text = readKeyFile(file);
  const cached = parsed.get(file);
  if (cached?.text === text) return cached.keys;
  const keys = parseKeyFile(file, text);
  parsed.set(file, { text, keys });
  return keys;
}

function readKeyFile(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw invalid(`cannot read ${file}: ${(err as Error).message}`);
  }
}

function parseKeyFile(file: string, text: string): FileKey[] {
  const blocks = [...text.matchAll(PEM_BLOCK)];
  if (blocks.some((b) => (b[1] ?? '').includes('PRIVATE'))) {
    // Never load it: the private key belongs offline with the sovereign.
    throw invalid(`${file} holds a PRIVATE key; SOVEREIGN_KEYS lists public keys only`);
  }
  const publicBlocks = blocks.filter((b) => b[1] === 'PUBLIC KEY');
  if (publicBlocks.length === 0) throw invalid(`${file} has no "BEGIN PUBLIC KEY" block`);
  const stem = basename(file).replace(/\.pem$/, '');
  return publicBlocks.map((block, i) => {
    let publicKey: KeyObject;
    try {
      publicKey = createPublicKey({ key: block[0], format: 'pem' });
    } catch (err) {
      throw invalid(`${file}: key ${i + 1} is not a readable public key (${(err as Error).message})`);
    }
    if (publicKey.asymmetricKeyType !== 'ed25519') {
      throw invalid(`${file}: key ${i + 1} is ${publicKey.asymmetricKeyType ?? 'unknown'}, not Ed25519`);
    }
    // A bundle's keys share a file name, so each gets its position as well.
    const name = publicBlocks.length === 1 ? stem : `${stem}#${i + 1}`;
    return { keyId: keyIdOf(publicKey), name, publicKey, file };
  });
}

function invalid(message: string): CutterError {
  return new CutterError('SOVEREIGN_KEYS_INVALID', message, { kind: 'bad_input' });
}
