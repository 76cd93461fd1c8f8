import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { enqueuerIdentities, keyIdentities, normaliseIdentity, sharedIdentity } from '../../shared/approval/identity.js';
import { loadTrustedKeys, type TrustedKeys } from '../../shared/approval/keys.js';
import { validateSovereignApproval, type RunBinding } from '../../shared/approval/validate.js';
import { errorCode } from '../../shared/errors.js';
import { keysLoadCode, scratchDirs } from '../support/key-files.js';
import { documentText, envelopeOf, FIXED_NOW, FIXED_RUN, fieldsFor, makeKey, utc, writeTrustedKeys, type TestKey } from '../support/sovereign.js';

/**
 * No self-approval by identity, not by spelling (DESIGN §3): identities are
 * compared normalised, a key's identities are its name and its entry in
 * identities.json, and the run's are its recorded database login and its
 * operator label.
 */

const tempDir = scratchDirs('cutter-identity-');
const loadCode = keysLoadCode;

describe('identity normalisation', () => {
  it('trims, lower-cases and folds compatibility forms', () => {
    expect(normaliseIdentity('OPS')).toBe('ops');
    expect(normaliseIdentity(' ops ')).toBe('ops');
    expect(normaliseIdentity('\tOps\u00a0')).toBe('ops');
    expect(normaliseIdentity('ＯＰＳ')).toBe('ops'); // full-width letters
    expect(normaliseIdentity('Jane.Doe@Example.ORG')).toBe('jane.doe@example.org');
    expect(normaliseIdentity('opsx')).not.toBe('ops');
  });

  it('gives a key its name and its mapped identities, each once, and the run its login and label', () => {
    expect(keyIdentities('Alice')).toEqual(['alice']);
    expect(keyIdentities('alice', [' ALICE ', 'ops_login', 'OPS_LOGIN'])).toEqual(['alice', 'ops_login']);
    expect(enqueuerIdentities({ operator: ' OPS ', enqueuedBy: 'ops' })).toEqual(['ops']);
    expect(enqueuerIdentities({ operator: 'tester', enqueuedBy: 'ops_login' })).toEqual(['ops_login', 'tester']);
  });

  it('finds the identity a key shares with whoever enqueued the run, on either side', () => {
    const run = { operator: 'OPS', enqueuedBy: 'ops_login' };
    expect(sharedIdentity({ identities: keyIdentities('ops') }, run)).toBe('ops');
    expect(sharedIdentity({ identities: keyIdentities('Ops_Login') }, run)).toBe('ops_login');
    expect(sharedIdentity({ identities: keyIdentities('dana', [' OPS_LOGIN']) }, run)).toBe('ops_login');
    expect(sharedIdentity({ identities: keyIdentities('erin') }, run)).toBeNull();
    // A blank label is nobody, not everybody.
    expect(sharedIdentity({ identities: keyIdentities('erin') }, { operator: '  ', enqueuedBy: 'ops_login' })).toBeNull();
  });
});

describe('identities.json in a SOVEREIGN_KEYS directory', () => {
  const alice = makeKey('alice');
  const dana = makeKey('dana');

  it('maps key names to identities (a string or a list); a key without an entry is its name', async () => {
    const dir = writeTrustedKeys(tempDir(), [alice, dana]);
    writeFileSync(join(dir, 'identities.json'), JSON.stringify({ dana: ' OPS_Login ', alice: ['Alice.Smith', 'asmith'] }));
    const keys = await loadTrustedKeys(dir);
    expect(keys.byId.get(dana.keyId)?.identities).toEqual(['dana', 'ops_login']);
    expect(keys.byId.get(alice.keyId)?.identities).toEqual(['alice', 'alice.smith', 'asmith']);

    const plain = writeTrustedKeys(tempDir(), [alice]);
    expect((await loadTrustedKeys(plain)).byId.get(alice.keyId)?.identities).toEqual(['alice']);
  });

  it('sees the file changed or removed on the next read', async () => {
    const dir = writeTrustedKeys(tempDir(), [dana]);
    writeFileSync(join(dir, 'identities.json'), JSON.stringify({ dana: 'ops_login' }));
    expect((await loadTrustedKeys(dir)).byId.get(dana.keyId)?.identities).toEqual(['dana', 'ops_login']);
    writeFileSync(join(dir, 'identities.json'), JSON.stringify({ dana: 'someone' }));
    expect((await loadTrustedKeys(dir)).byId.get(dana.keyId)?.identities).toEqual(['dana', 'someone']);
    rmSync(join(dir, 'identities.json'));
    expect((await loadTrustedKeys(dir)).byId.get(dana.keyId)?.identities).toEqual(['dana']);
  });

  it.each([
    ['not JSON', '{dana: ops}', /is not JSON/],
    ['an array', '["dana"]', /one JSON object/],
    ['a string', '"dana"', /one JSON object/],
    ['an entry for no key (a typo)', '{"dnaa": "ops"}', /"dnaa", which is no key in this directory/],
    ['a number', '{"dana": 7}', /not a string/],
    ['an empty list', '{"dana": []}', /empty list/],
    ['a blank identity', '{"dana": "  "}', /an identity is 1-200 characters/],
    ['a control character', '{"dana": "ops\\u0000"}', /without control characters/],
    ['a list holding null', '{"dana": ["ops", null]}', /not a string/],
  ])('refuses %s with SOVEREIGN_IDENTITIES_INVALID', async (_what, text, message) => {
    const dir = writeTrustedKeys(tempDir(), [alice, dana]);
    writeFileSync(join(dir, 'identities.json'), text);
    expect(await loadCode(dir)).toBe('SOVEREIGN_IDENTITIES_INVALID');
    await expect(loadTrustedKeys(dir)).rejects.toThrow(message);
  });
});

describe('validate_sovereign_approval: no self-approval by identity', () => {
  const run: RunBinding = { ...FIXED_RUN, scope: { ...FIXED_RUN.scope, transitions: [...FIXED_RUN.scope.transitions] } };
  const keysDir = tempDir();
  // FIXED_RUN: operator label "tester", enqueued by the database login "ops_login".
  const labelKey = makeKey('TESTER');
  const loginKey = makeKey('Ops_Login');
  const mappedKey = makeKey('dana');
  const erin = makeKey('erin');
  writeTrustedKeys(keysDir, [labelKey, loginKey, mappedKey, erin]);
  writeFileSync(join(keysDir, 'identities.json'), JSON.stringify({ dana: ' OPS_LOGIN ' }));
  let keys: TrustedKeys | undefined;

  async function verdict(key: TestKey, over: Partial<RunBinding> = {}): Promise<string> {
    keys ??= await loadTrustedKeys(keysDir);
    const fields = fieldsFor(FIXED_RUN, 'SG_1', { signed_utc: utc(new Date(FIXED_NOW.getTime() - 60_000)), expires_utc: utc(new Date(FIXED_NOW.getTime() + 3600_000)) });
    try {
      for (const stage of ['submit', 'gate', 'execute'] as const) {
        validateSovereignApproval(envelopeOf(documentText(fields), key), { keys, run: { ...run, ...over, ...(stage === 'submit' ? {} : { status: 'running' }) }, now: FIXED_NOW, stage });
      }
      return 'valid';
    } catch (err) {
      return errorCode(err);
    }
  }

  it('refuses, at submit, gate and execute, a key named like the operator label in another spelling', async () => {
    expect(await verdict(labelKey)).toBe('APPROVAL_SELF_APPROVAL');
    expect(await verdict(erin, { operator: ' ERIN ' })).toBe('APPROVAL_SELF_APPROVAL');
  });

  it('refuses a key named like the database login, whatever the operator label says', async () => {
    expect(await verdict(loginKey)).toBe('APPROVAL_SELF_APPROVAL');
    expect(await verdict(loginKey, { operator: 'someone-else' })).toBe('APPROVAL_SELF_APPROVAL');
  });

  it('refuses a key identities.json maps to the login', async () => {
    expect(await verdict(mappedKey)).toBe('APPROVAL_SELF_APPROVAL');
    expect(await verdict(mappedKey, { operator: 'someone-else' })).toBe('APPROVAL_SELF_APPROVAL');
  });

  it('accepts a key of another identity, and the same keys for a run someone else enqueued', async () => {
    expect(await verdict(erin)).toBe('valid');
    const other = { operator: 'zed', enqueuedBy: 'zed_login' };
    for (const key of [labelKey, loginKey, mappedKey]) expect(await verdict(key, other)).toBe('valid');
  });
});
