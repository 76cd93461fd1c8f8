import { generateKeyPairSync } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { keyIdOf, loadTrustedKeys } from '../../shared/approval/keys.js';
import { keysLoadCode, scratchDirs } from '../support/key-files.js';
import { makeKey, writeTrustedKeys } from '../support/sovereign.js';

const tempDir = scratchDirs('cutter-keys-');
const loadCode = keysLoadCode;

describe('trusted sovereign keys (SOVEREIGN_KEYS)', () => {
  it('loads a directory of .pem files, each named by its file, with key ids of sha256 over the SPKI DER', async () => {
    const alice = makeKey('alice');
    const bob = makeKey('bob');
    const dir = writeTrustedKeys(tempDir(), [alice, bob]);
    writeFileSync(join(dir, 'README.txt'), 'not a key');
    const keys = await loadTrustedKeys(dir);
    expect([...keys.byId.keys()].sort()).toEqual([alice.keyId, bob.keyId].sort());
    expect(keys.byId.get(alice.keyId)?.name).toBe('alice');
    expect(keyIdOf(alice.privateKey)).toBe(alice.keyId);
  });

  it('loads a bundle of several keys from one file, numbering their names', async () => {
    const a = makeKey('a');
    const b = makeKey('b');
    const file = join(tempDir(), 'sovereigns.pem');
    writeFileSync(file, `${a.publicPem}\n${b.publicPem}`);
    const keys = await loadTrustedKeys(file);
    expect(keys.byId.get(a.keyId)?.name).toBe('sovereigns#1');
    expect(keys.byId.get(b.keyId)?.name).toBe('sovereigns#2');
  });

  it('sees a key replaced in place (same name, same size) or removed on the very next read', async () => {
    const alice = makeKey('alice');
    const bob = makeKey('bob');
    const dir = writeTrustedKeys(tempDir(), [alice, bob]);
    expect([...(await loadTrustedKeys(dir)).byId.keys()].sort()).toEqual([alice.keyId, bob.keyId].sort());
    // Every Ed25519 public PEM has the same length, so only the content tells the new key from the old.
    const mallory = makeKey('alice');
    expect(mallory.publicPem.length).toBe(alice.publicPem.length);
    writeFileSync(join(dir, 'alice.pem'), mallory.publicPem);
    const replaced = await loadTrustedKeys(dir);
    expect(replaced.byId.has(alice.keyId)).toBe(false);
    expect(replaced.byId.get(mallory.keyId)?.name).toBe('alice');
    rmSync(join(dir, 'bob.pem'));
    expect([...(await loadTrustedKeys(dir)).byId.keys()]).toEqual([mallory.keyId]);
  });

  it('trusts nothing when SOVEREIGN_KEYS is not set', async () => {
    expect((await loadTrustedKeys(undefined)).byId.size).toBe(0);
  });

  it('refuses a private key, a non-Ed25519 key, a key twice, an empty directory and a missing path', async () => {
    const k = makeKey('k');
    const withPrivate = tempDir();
    writeFileSync(join(withPrivate, 'k.pem'), k.privatePem);
    expect(await loadCode(withPrivate)).toBe('SOVEREIGN_KEYS_INVALID');

    const rsa = tempDir();
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    writeFileSync(join(rsa, 'r.pem'), publicKey.export({ type: 'spki', format: 'pem' }));
    expect(await loadCode(rsa)).toBe('SOVEREIGN_KEYS_INVALID');

    const twice = tempDir();
    writeFileSync(join(twice, 'one.pem'), k.publicPem);
    writeFileSync(join(twice, 'two.pem'), k.publicPem);
    await expect(loadTrustedKeys(twice)).rejects.toThrow(/appears twice/);

    expect(await loadCode(tempDir())).toBe('SOVEREIGN_KEYS_INVALID');
    expect(await loadCode('/nonexistent/keys')).toBe('SOVEREIGN_KEYS_INVALID');
  });
});
