import { generateKeyPairSync, sign, verify } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseEnvelope } from '../../shared/approval/envelope.js';
import { keyIdOf, loadTrustedKeys, type TrustedKeys } from '../../shared/approval/keys.js';
import { isRefusal } from '../../shared/approval/refusals.js';
import { validateSovereignApproval, type RunBinding } from '../../shared/approval/validate.js';
import { CutterError } from '../../shared/errors.js';
import { documentText, envelopeOf, FIXED_NOW, FIXED_RUN, fieldsFor, makeKey, utc, writeTrustedKeys, type DocFields, type Envelope } from '../support/sovereign.js';
import { recordOutcome, trials } from './support/outcomes.js';

/**
 * Forged, mangled and random approvals (DESIGN §3). The validator must
 * accept exactly the envelopes an independent oracle written here from §3
 * calls valid (a document of the exact grammar, bound to the run, in time,
 * covering the plan, signed over its exact bytes by a trusted key that is
 * not the operator's by any spelling of its name, its identities.json entry,
 * the run's database login or its operator label), refuse everything else
 * with its own refusal errors,
 * and never throw anything else. Forgeries accepted must be 0.
 */

// Full mode runs ten times the cases; the chaos project's 120 s a test is sized for the fast subset.
const TIMEOUT = trials(120_000, 900_000);

const alice = makeKey('alice');
const bob = makeKey('bob');
// Trusted, but the operator's own (FIXED_RUN: label "tester", enqueued by the database login "ops_login"): no self-approval.
const operatorKey = makeKey('tester'); // named like the label
const labelKey = makeKey('TESTER'); // the label, spelled otherwise
const loginKey = makeKey('Ops_Login'); // the login, spelled otherwise
const mappedKey = makeKey('carol'); // identities.json maps it to the login
const IDENTITIES: Record<string, string[]> = { carol: [' OPS_LOGIN '] };
const mallory = makeKey('mallory'); // not trusted
const TRUSTED = [alice, bob, operatorKey, labelKey, loginKey, mappedKey];
const OWN_KEYS = [operatorKey, labelKey, loginKey, mappedKey];
const now = FIXED_NOW;
const run: RunBinding = { ...FIXED_RUN, scope: { ...FIXED_RUN.scope, transitions: [...FIXED_RUN.scope.transitions] } };
const signable = { runId: run.runId, target: run.target, planSha256: run.planSha256 ?? '' };
const at = (ms: number) => utc(new Date(now.getTime() + ms));
const H = 3600_000;
const validFields = (gate: 'SG_1' | 'EXEC', over: Partial<DocFields> = {}) => fieldsFor(signable, gate, { signed_utc: at(-60_000), expires_utc: at(H), ...over });

const dir = mkdtempSync(join(tmpdir(), 'cutter-fuzz-approval-'));
let keys: TrustedKeys;
beforeAll(async () => {
  // Through the real loader, as the board reads SOVEREIGN_KEYS.
  const trusted = writeTrustedKeys(join(dir, 'trusted'), TRUSTED);
  writeFileSync(join(trusted, 'identities.json'), JSON.stringify(IDENTITIES));
  keys = await loadTrustedKeys(trusted);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// ---- the oracle (DESIGN §3, written independently of shared/approval) -------

const TRANSITIONS = ['new->draft', 'new->enacted', 'draft->enacted', 'draft->retired', 'enacted->retired', 'revise'];

/** Milliseconds of a YYYY-MM-DDTHH:MM:SSZ text naming a real instant, or null. */
function utcMs(text: string): number | null {
  const m = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)Z$/.exec(text);
  if (!m) return null;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const date = new Date(0);
  date.setUTCFullYear(y, mo - 1, d);
  date.setUTCHours(h, mi, s, 0);
  const same = date.getUTCFullYear() === y && date.getUTCMonth() === mo - 1 && date.getUTCDate() === d && date.getUTCHours() === h && date.getUTCMinutes() === mi && date.getUTCSeconds() === s;
  return same ? date.getTime() : null;
}

function documentIsValid(doc: string): boolean {
  const lines = doc.split('\n');
  if (lines.length !== 10 || lines[9] !== '') return false;
  const value = (i: number, name: string) => (lines[i]?.startsWith(`${name}: `) ? (lines[i] ?? '').slice(name.length + 2) : null);
  const gate = value(1, 'gate');
  if (value(0, 'cutter-approval') !== 'v1' || (gate !== 'SG_1' && gate !== 'EXEC')) return false;
  if (value(2, 'run_id') !== run.runId || value(3, 'target') !== run.target || value(4, 'plan_sha256') !== run.planSha256) return false;
  const signed = utcMs(value(5, 'signed_utc') ?? '');
  const expires = utcMs(value(6, 'expires_utc') ?? '');
  const t = now.getTime();
  if (signed === null || expires === null || signed > t + 120_000 || expires <= t || expires <= signed || expires - signed > 72 * H) return false;
  if (!/^[0-9a-f]{32}$/.test(value(8, 'nonce') ?? '')) return false;
  const allowance = value(7, 'allowance') ?? '';
  if (gate === 'EXEC') return allowance === 'execution_enabled=true';
  const m = /^max_units=(0|[1-9][0-9]*); transitions=(.+)$/.exec(allowance);
  if (!m || Number(m[1]) > 2_147_483_647 || Number(m[1]) < (run.scope?.unitCount ?? 0)) return false;
  const list = (m[2] ?? '').split(',');
  return list.every((x) => TRANSITIONS.includes(x)) && new Set(list).size === list.length && (run.scope?.transitions ?? []).every((x) => list.includes(x));
}

/** DESIGN §3: identities are the same when equal trimmed and lower-cased (after Unicode NFKC). */
const sameIdentity = (a: string, b: string) => a.normalize('NFKC').trim().toLowerCase() === b.normalize('NFKC').trim().toLowerCase();

/** A key belongs to its name and its identities.json entry; the run to its login and its label. */
function ownKey(key: { name: string }): boolean {
  const mine = [key.name, ...(IDENTITIES[key.name] ?? [])];
  return mine.some((i) => [run.enqueuedBy, run.operator].some((r) => sameIdentity(i, r)));
}

/** True when the input is exactly a valid document signed by a trusted key that may approve this run. */
function oracle(input: unknown): boolean {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return false;
  if (Object.keys(input).sort().join(',') !== 'document,key_id,signature') return false;
  const { document, signature, key_id } = input as Record<string, unknown>;
  if (typeof document !== 'string' || typeof signature !== 'string' || typeof key_id !== 'string') return false;
  const signer = TRUSTED.find((k) => k.keyId === key_id);
  const sig = Buffer.from(signature, 'base64');
  if (!signer || ownKey(signer) || sig.length !== 64 || sig.toString('base64') !== signature) return false;
  return verify(null, Buffer.from(document, 'utf8'), signer.privateKey, sig) && documentIsValid(document);
}

// ---- judging ---------------------------------------------------------------

interface Tally {
  tries: number;
  accepted: number;
  forgeries: number;
  refusedByCode: Map<string, number>;
}
const newTally = (): Tally => ({ tries: 0, accepted: 0, forgeries: 0, refusedByCode: new Map() });
const topCodes = (t: Tally) => [...t.refusedByCode].sort((a, b) => b[1] - a[1]).map(([c, n]) => `${n} ${c}`).join(', ');

/** Runs the board's two steps (envelope shape, then the rules); true when accepted. Anything but a refusal fails the property. */
function judge(input: unknown, t: Tally): boolean {
  t.tries += 1;
  let accepted: boolean;
  try {
    validateSovereignApproval(parseEnvelope(input), { keys, run, now, stage: 'submit' });
    accepted = true;
  } catch (err) {
    if (!isRefusal(err)) throw new Error(`threw something other than a refusal: ${String(err)}`, { cause: err });
    t.refusedByCode.set(err.code, (t.refusedByCode.get(err.code) ?? 0) + 1);
    accepted = false;
  }
  if (accepted) t.accepted += 1;
  if (accepted && !oracle(input)) t.forgeries += 1;
  return accepted;
}

/** The board parses the body as JSON first; text that is not JSON is refused there. */
function judgeJson(text: string, t: Tally): boolean {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    t.tries += 1;
    t.refusedByCode.set('BODY_NOT_JSON', (t.refusedByCode.get('BODY_NOT_JSON') ?? 0) + 1);
    return false;
  }
  return judge(body, t);
}

function outcome(fault: string, t: Tally, extra = ''): void {
  recordOutcome({ group: 'hostile input', fault, tries: t.tries, runsEnded: null, doubleApplications: 0, partialApplications: 0, lostRuns: 0, forgeriesAccepted: t.forgeries, notes: `accepted ${t.accepted}${extra}; refused by code: ${topCodes(t)}` });
}

// ---- inputs ----------------------------------------------------------------

const hex = (min: number, max: number) => fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: min, maxLength: max });
const LOOKALIKES = ['а', 'е', 'о', 'ѕ', 'Ｓ', '０', '１', '\u00a0', '\u200b', '\u2028', '\ufeff', '\r', '\t', ' ', 'ǀ', '−', '：', 'É'];
const aChar = fc.oneof(fc.constantFrom(...LOOKALIKES), fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }), fc.string({ unit: 'binary-ascii', minLength: 1, maxLength: 1 }));
const keyIds = fc.constantFrom(...[alice, bob, ...OWN_KEYS, mallory].map((k) => k.keyId));

/** Edits of a document's text. */
const textEdit = fc.oneof(
  fc.record({ op: fc.constant('replace' as const), pos: fc.nat(), text: aChar }),
  fc.record({ op: fc.constant('insert' as const), pos: fc.nat(), text: fc.oneof(aChar, fc.constantFrom('\n', ' ', '  ', '\r\n', 'nonce: 00000000000000000000000000000000\n')) }),
  fc.record({ op: fc.constant('delete' as const), pos: fc.nat(), len: fc.integer({ min: 1, max: 4 }) }),
  fc.record({ op: fc.constant('lines' as const), how: fc.constantFrom('crlf', 'extra-final-lf', 'no-final-lf', 'leading-space', 'trailing-space', 'double-space', 'swap', 'duplicate', 'drop', 'uppercase-name') , pos: fc.nat() }),
);
type TextEdit = typeof textEdit extends fc.Arbitrary<infer T> ? T : never;

function editText(doc: string, e: TextEdit): string {
  const pos = e.pos % (doc.length + 1);
  if (e.op === 'replace') return doc.slice(0, pos) + e.text + doc.slice(pos + 1);
  if (e.op === 'insert') return doc.slice(0, pos) + e.text + doc.slice(pos);
  if (e.op === 'delete') return doc.slice(0, pos) + doc.slice(pos + e.len);
  const lines = doc.slice(0, -1).split('\n');
  const i = e.pos % lines.length;
  const line = lines[i] ?? '';
  const edits: Record<typeof e.how, () => string> = {
    crlf: () => doc.replace(/\n/g, '\r\n'),
    'extra-final-lf': () => `${doc}\n`,
    'no-final-lf': () => doc.slice(0, -1),
    'leading-space': () => lines.map((l, k) => (k === i ? ` ${l}` : l)).join('\n') + '\n',
    'trailing-space': () => lines.map((l, k) => (k === i ? `${l} ` : l)).join('\n') + '\n',
    'double-space': () => lines.map((l, k) => (k === i ? l.replace(': ', ':  ') : l)).join('\n') + '\n',
    swap: () => [...lines.slice(0, i), lines[(i + 1) % lines.length] ?? '', line, ...lines.slice(i + 2)].slice(0, lines.length).join('\n') + '\n',
    duplicate: () => [...lines.slice(0, i + 1), line, ...lines.slice(i + 1)].join('\n') + '\n',
    drop: () => [...lines.slice(0, i), ...lines.slice(i + 1)].join('\n') + '\n',
    'uppercase-name': () => lines.map((l, k) => (k === i ? l.replace(/^[^:]*/, (n) => n.toUpperCase()) : l)).join('\n') + '\n',
  };
  return edits[e.how]();
}

/** Mostly the valid value, sometimes one of the others: most documents are then one or two fields away from valid. */
function near<T>(valid: fc.Arbitrary<T>, ...others: fc.Arbitrary<T>[]): fc.Arbitrary<T> {
  return fc.oneof({ weight: 3 * others.length + 3, arbitrary: valid }, ...others.map((arbitrary) => ({ weight: 1, arbitrary })));
}

/** Field values near and far from valid, for documents that are then properly signed. */
const docFields = fc.record({
  gate: near(fc.constantFrom('SG_1', 'EXEC'), fc.constantFrom('sg_1', 'SG_2', 'EXEC ', 'EXEC\t')),
  run_id: near(fc.constant(run.runId), fc.constantFrom('run-20261124-095000-bbbbbb', run.runId.toUpperCase(), 'run')),
  target: near(fc.constant(run.target), fc.constantFrom('icx-const', 'ICX-WORK', 'icx-work.')),
  plan_sha256: near(fc.constant(run.planSha256 ?? ''), hex(63, 65)),
  signed_utc: near(
    fc.integer({ min: -70, max: 2 }).map((m) => at(m * 60_000)),
    fc.integer({ min: -80, max: 4 }).map((h) => at((h * H) / 2)),
    fc.integer({ min: 100, max: 140 }).map((s) => at(s * 1000)),
    fc.constantFrom('2026-02-30T00:00:00Z', '2026-11-24T24:00:00Z', '2026-11-24 09:00:00Z', '2026-11-24T09:00:00.000Z', '2026-11-24T09:59:60Z'),
  ),
  expires_ms: near(fc.integer({ min: 2, max: 70 }).map((h) => h * H), fc.integer({ min: -2, max: 80 }).map((h) => h * H), fc.integer({ min: -5, max: 5 }).map((s) => 72 * H + s * 1000)),
  max_units: near(fc.constantFrom('55', '56', '500', '2147483647'), fc.constantFrom('0', '54', '055', '-1', '1e3', '2147483648', '99999999999')),
  transitions: near(
    fc.shuffledSubarray(TRANSITIONS, { minLength: 0 }).map((extra) => [...new Set([...(run.scope?.transitions ?? []), ...extra])]),
    fc.subarray(TRANSITIONS, { minLength: 0 }),
    fc.shuffledSubarray([...TRANSITIONS, 'revise', 'new->Draft', ' revise', ''], { minLength: 1 }),
  ),
  exec: near(fc.constant('execution_enabled=true'), fc.constantFrom('execution_enabled=TRUE', 'execution_enabled=true; max_units=1', 'max_units=500; transitions=revise')),
  nonce: near(hex(32, 32), hex(31, 33), fc.constant('A'.repeat(32))),
  signer: near(fc.constantFrom(alice, bob), fc.constantFrom(...OWN_KEYS)),
}).map((f) => {
  const signedMs = utcMs(f.signed_utc) ?? now.getTime();
  const fields: DocFields = {
    version: 'v1', gate: f.gate, run_id: f.run_id, target: f.target, plan_sha256: f.plan_sha256, signed_utc: f.signed_utc,
    expires_utc: utc(new Date(signedMs + f.expires_ms)),
    allowance: f.gate.startsWith('EXEC') ? f.exec : `max_units=${f.max_units}; transitions=${f.transitions.join(',')}`,
    nonce: f.nonce,
  };
  return { fields, signer: f.signer };
});

/** How a valid envelope is tampered with while it keeps its original signature (or a forged one). */
const tamper = fc.oneof(
  fc.record({ kind: fc.constant('document' as const), edits: fc.array(textEdit, { minLength: 1, maxLength: 3 }) }),
  fc.record({ kind: fc.constant('signature-bit' as const), byte: fc.integer({ min: 0, max: 63 }), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('signature-text' as const), edit: textEdit }),
  fc.record({ kind: fc.constant('key-id' as const), keyId: fc.oneof(keyIds, hex(0, 20), fc.constant(alice.keyId.toUpperCase())) }),
  fc.record({ kind: fc.constant('key-id-text' as const), edit: textEdit }),
  fc.record({ kind: fc.constant('untrusted-signer' as const), claim: keyIds, edits: fc.array(textEdit, { maxLength: 1 }) }),
  fc.record({ kind: fc.constant('extra-field' as const), name: fc.constantFrom('__proto__', 'constructor', 'gate', 'Document', 'key_id '), value: fc.jsonValue({ maxDepth: 1 }) }),
);
type Tamper = typeof tamper extends fc.Arbitrary<infer T> ? T : never;

function tampered(env: Envelope, t: Tamper): unknown {
  switch (t.kind) {
    case 'document':
      return { ...env, document: t.edits.reduce(editText, env.document) };
    case 'signature-bit': {
      const sig = Buffer.from(env.signature, 'base64');
      sig[t.byte] = (sig[t.byte] as number) ^ (1 << t.bit);
      return { ...env, signature: sig.toString('base64') };
    }
    case 'signature-text':
      return { ...env, signature: editText(env.signature, t.edit) };
    case 'key-id':
      return { ...env, key_id: t.keyId };
    case 'key-id-text':
      return { ...env, key_id: editText(env.key_id, t.edit) };
    case 'untrusted-signer':
      return envelopeOf(t.edits.reduce(editText, env.document), mallory, t.claim);
    case 'extra-field':
      return JSON.parse(`{${JSON.stringify(t.name)}:${JSON.stringify(t.value) ?? 'null'},${JSON.stringify(env).slice(1)}`) as unknown;
  }
}

/** The same envelope as other JSON texts: some decode to the very same strings (and stay valid), some do not. */
const ESCAPE_ALL = (s: string) => `"${[...s].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')}"`;
const reserialise = fc.constantFrom('pretty', 'reordered', 'escaped', 'dup-forged-first', 'dup-forged-last', 'bom', 'array', 'nested');
function jsonText(env: Envelope, how: string): string {
  const forged = JSON.stringify(env.document.replace('max_units=500', 'max_units=999'));
  const texts: Record<string, () => string> = {
    pretty: () => JSON.stringify(env, null, 2),
    reordered: () => JSON.stringify({ key_id: env.key_id, signature: env.signature, document: env.document }),
    escaped: () => `{"document":${ESCAPE_ALL(env.document)},"signature":${ESCAPE_ALL(env.signature)},"key_id":${ESCAPE_ALL(env.key_id)}}`,
    'dup-forged-first': () => `{"document":${forged},${JSON.stringify(env).slice(1)}`,
    'dup-forged-last': () => `${JSON.stringify(env).slice(0, -1)},"document":${forged}}`,
    bom: () => `\ufeff${JSON.stringify(env)}`,
    array: () => JSON.stringify([env]),
    nested: () => JSON.stringify({ envelope: env }),
  };
  return (texts[how] ?? texts['pretty'] ?? (() => ''))();
}

// ---- properties ------------------------------------------------------------

describe('approval validator under hostile input (DESIGN §3)', { timeout: TIMEOUT }, () => {
  it('random envelopes and documents: never accepted, refused with its own errors only', () => {
    const t = newTally();
    const randomDoc = fc.oneof(fc.string({ unit: 'binary', maxLength: 400 }), docFields.map((d) => documentText(d.fields)));
    const envelope = fc.oneof(
      fc.anything(),
      fc.record({ document: fc.oneof(randomDoc, fc.anything()), signature: fc.oneof(fc.base64String({ minLength: 88, maxLength: 88 }), fc.string(), fc.anything()), key_id: fc.oneof(keyIds, hex(0, 20), fc.anything()) }, { requiredKeys: [] }),
    );
    try {
      fc.assert(fc.property(envelope, (e) => judge(e, t) === oracle(e)), { numRuns: trials(2000, 20_000) });
    } finally {
      outcome('approval: random envelopes and documents', t);
    }
    expect(t.forgeries).toBe(0);
  });

  it('a valid signed envelope tampered with (document bytes, look-alikes, signature bits, key ids, untrusted signer, extra fields): only the untouched one is accepted', () => {
    const t = newTally();
    let untouched = 0;
    try {
      fc.assert(
        fc.property(fc.constantFrom('SG_1' as const, 'EXEC' as const), tamper, (gate, how) => {
          const env = envelopeOf(documentText(validFields(gate)), alice);
          expect(judge(env, newTally())).toBe(true); // the control: the original is valid
          const forged = tampered(env, how);
          const same = JSON.stringify(forged) === JSON.stringify(env);
          if (same) untouched += 1;
          expect(judge(forged, t)).toBe(same && oracle(forged));
        }),
        { numRuns: trials(2000, 20_000) },
      );
    } finally {
      outcome('approval: mutated signed envelope', t, ` (${untouched} edits changed nothing)`);
    }
    expect(t.forgeries).toBe(0);
  });

  it('the same envelope as other JSON texts: accepted exactly when it decodes to the signed strings', () => {
    const t = newTally();
    try {
      fc.assert(
        fc.property(fc.constantFrom('SG_1' as const, 'EXEC' as const), reserialise, (gate, how) => {
          const env = envelopeOf(documentText(validFields(gate)), bob);
          const text = jsonText(env, how);
          let decoded: unknown = null;
          try {
            decoded = JSON.parse(text);
          } catch {
            // Not JSON at all: the board answers BODY_NOT_JSON.
          }
          expect(judgeJson(text, t)).toBe(oracle(decoded));
        }),
        { numRuns: trials(300, 3000) },
      );
    } finally {
      outcome('approval: re-serialised envelope JSON', t);
    }
    expect(t.forgeries).toBe(0);
  });

  it('documents near and far from valid, properly signed by a trusted key: accepted exactly when the oracle says valid', () => {
    const t = newTally();
    let oracleValid = 0;
    try {
      fc.assert(
        fc.property(docFields, near(fc.constant([] as TextEdit[]), fc.array(textEdit, { minLength: 1, maxLength: 2 })), ({ fields, signer }, edits) => {
          const doc = edits.reduce(editText, documentText(fields));
          const env = envelopeOf(doc, signer);
          const want = oracle(env);
          if (want) oracleValid += 1;
          expect(judge(env, t), doc).toBe(want);
        }),
        { numRuns: trials(3000, 30_000) },
      );
    } finally {
      outcome('approval: documents re-signed by a trusted key', t, ` (the oracle called ${oracleValid} valid)`);
    }
    expect(t.forgeries).toBe(0);
  });

  it('trusted key files mangled: loaded as Ed25519 keys or refused with SOVEREIGN_KEYS_INVALID, nothing else', async () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const pem = fc.oneof(
      fc.constantFrom(alice.publicPem, `${alice.publicPem}${bob.publicPem}`, `${alice.publicPem}${alice.publicPem}`, alice.privatePem, rsa, ec, '', 'garbage'),
      fc.tuple(fc.constantFrom(alice.publicPem, `${bob.publicPem}\n${alice.publicPem}`), fc.array(textEdit, { minLength: 1, maxLength: 3 })).map(([p, edits]) => edits.reduce(editText, p)),
    );
    const t = newTally();
    let loaded = 0;
    let n = 0;
    try {
      await fc.assert(
        fc.asyncProperty(pem, async (text) => {
          t.tries += 1;
          n += 1;
          const file = join(dir, `k${n}.pem`);
          writeFileSync(file, text);
          const got = await loadTrustedKeys(file).then((k) => ({ k }), (error: unknown) => ({ error }));
          rmSync(file, { force: true });
          if ('error' in got) {
            expect(got.error).toBeInstanceOf(CutterError);
            expect((got.error as CutterError).code).toBe('SOVEREIGN_KEYS_INVALID');
            t.refusedByCode.set('SOVEREIGN_KEYS_INVALID', (t.refusedByCode.get('SOVEREIGN_KEYS_INVALID') ?? 0) + 1);
            return;
          }
          loaded += 1;
          for (const key of got.k.byId.values()) {
            expect(key.publicKey.asymmetricKeyType).toBe('ed25519');
            expect(key.keyId).toBe(keyIdOf(key.publicKey));
            // A mangled file may still hold alice's key; it must then be alice's, not a key that verifies her signatures by accident.
            const sig = sign(null, Buffer.from('probe'), alice.privateKey);
            expect(verify(null, Buffer.from('probe'), key.publicKey, sig)).toBe(key.keyId === alice.keyId);
          }
        }),
        { numRuns: trials(200, 2000) },
      );
    } finally {
      outcome('approval: trusted key files mangled', t, ` (${loaded} files loaded)`);
    }
  });
});
