import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packetRecipients } from '../../shared/backup/gpg.js';
import { HEAD_BYTES } from '../../shared/backup/pgdump.js';
import { recipientKeyIds } from '../../shared/backup/packets.js';
import { createTestKey, type TestKeyring } from '../support/gpg.js';

/**
 * The backup reads the recipients of its new file from the ciphertext's head
 * in process; gpg --list-packets is the reference it must agree with.
 */

let curve: TestKeyring;
let rsa: TestKeyring;

beforeAll(() => {
  curve = createTestKey();
  rsa = createTestKey({ algorithm: 'rsa2048' });
  // One keyring that can encrypt to both.
  const exported = execFileSync('gpg', ['--batch', '--homedir', rsa.home, '--export', rsa.fpr]);
  execFileSync('gpg', ['--batch', '--homedir', curve.home, '--import'], { input: exported, stdio: ['pipe', 'ignore', 'ignore'] });
}, 120_000);

afterAll(() => {
  curve.remove();
  rsa.remove();
});

function encrypt(recipients: string[], plaintext: Buffer): Buffer {
  const to = recipients.flatMap((r) => ['--recipient', r]);
  return execFileSync('gpg', ['--batch', '--no-tty', '--homedir', curve.home, '--trust-model', 'always', '--compress-algo', 'none', ...to, '--encrypt'], {
    input: plaintext,
    maxBuffer: 64 * 1024 * 1024,
  });
}

async function listedByGpg(head: Buffer): Promise<string[]> {
  const listed = await packetRecipients(curve.home, { head });
  if (!listed.ok) throw new Error(listed.stderr);
  return listed.keyIds;
}

describe('recipients read from the head of an OpenPGP message', () => {
  it('names the cv25519 subkey, as gpg does, from the head the backup keeps', async () => {
    const message = encrypt([curve.fpr], randomBytes(100_000));
    const head = message.subarray(0, HEAD_BYTES);
    expect(recipientKeyIds(head)).toEqual([curve.encryptionSubkeyId]);
    expect(await listedByGpg(head)).toEqual([curve.encryptionSubkeyId]);
  });

  it('names an RSA subkey, whose session key packet needs a two-byte length, as gpg does', async () => {
    const message = encrypt([rsa.fpr], randomBytes(10_000));
    expect(recipientKeyIds(message.subarray(0, HEAD_BYTES))).toEqual([rsa.encryptionSubkeyId]);
    expect(await listedByGpg(message.subarray(0, HEAD_BYTES))).toEqual([rsa.encryptionSubkeyId]);
  });

  it('names every recipient of a message to two keys, in gpg\'s order', async () => {
    const message = encrypt([curve.fpr, rsa.fpr], Buffer.from('two recipients'));
    const ids = recipientKeyIds(message);
    expect(ids?.slice().sort()).toEqual([curve.encryptionSubkeyId, rsa.encryptionSubkeyId].sort());
    expect(ids).toEqual(await listedByGpg(message));
  });

  it('says it does not know when the head ends before the encrypted data starts', () => {
    const message = encrypt([rsa.fpr], Buffer.from('short'));
    expect(recipientKeyIds(message.subarray(0, 40))).toBeUndefined();
    expect(recipientKeyIds(message.subarray(0, 1))).toBeUndefined();
    expect(recipientKeyIds(Buffer.alloc(0))).toBeUndefined();
  });

  it('says it does not know what it cannot read for certain, rather than guess', () => {
    const keyId = Buffer.from('0123456789ABCDEF', 'hex');
    const pkesk = (version: number) => Buffer.concat([Buffer.from([0xc1, 10 + 2, version]), keyId, Buffer.from([18, 0, 0])]);
    const data = Buffer.from([0xd2, 0x05, 1, 2, 3, 4, 5]);
    // The shape gpg writes: known.
    expect(recipientKeyIds(Buffer.concat([pkesk(3), data]))).toEqual(['0123456789ABCDEF']);
    // A marker packet first is skipped.
    expect(recipientKeyIds(Buffer.concat([Buffer.from([0xca, 3, 0x50, 0x47, 0x50]), pkesk(3), data]))).toEqual(['0123456789ABCDEF']);
    // Old-format header, 4-byte length.
    const old = Buffer.concat([Buffer.from([0x86, 0, 0, 0, 13, 3]), keyId, Buffer.from([18, 0, 0, 0])]);
    expect(recipientKeyIds(Buffer.concat([old, data]))).toEqual(['0123456789ABCDEF']);
    // A version-6 session key packet (RFC 9580) names a fingerprint, not a key id.
    expect(recipientKeyIds(Buffer.concat([pkesk(6), data]))).toBeUndefined();
    // No session key at all, or a literal packet where the session keys belong.
    expect(recipientKeyIds(data)).toBeUndefined();
    expect(recipientKeyIds(Buffer.concat([Buffer.from([0xcb, 2, 0x62, 0]), data]))).toBeUndefined();
    // Not OpenPGP.
    expect(recipientKeyIds(Buffer.from('PGDMP'))).toBeUndefined();
  });
});
