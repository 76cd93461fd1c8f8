import { createHash } from 'node:crypto';
import { rmSync } from 'node:fs';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CutterError } from '../../shared/errors.js';
import { formatIssue, SnapshotInvalidError, type SnapshotIssue } from '../../shared/snapshot/issues.js';
import { SnapshotReader } from '../../shared/snapshot/reader.js';
import { stageSnapshot, stageSnapshotWith } from '../../shared/snapshot/stage.js';
import { validateSnapshot } from '../../shared/snapshot/validate.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { insertRunRow, insertTargetRow, scratchDir } from '../support/plan-fixtures.js';
import { recordOutcome, trials } from './support/outcomes.js';
import { CORPUS, generated, MAX_BODY, mutatedDemo, randomBytes } from './support/snapshot-inputs.js';

/**
 * Hostile snapshots (C5). Every file is judged twice: by the product's
 * streaming parser and by an independent oracle written here from DESIGN §2
 * (whole-file decode, JSON.parse, the record rules). They must agree; a
 * refusal must be a SnapshotInvalidError whose issues name a line of the
 * file; and a file the oracle calls invalid must never leave a staged row.
 */

// Full mode runs ten times the cases; the chaos project's 120 s a test is sized for the fast subset.
const TIMEOUT = trials(120_000, 900_000);

const MAX_RECORD = 8 * MAX_BODY;
const KEY = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$/;
const files = scratchDir('fuzz-snapshot');
afterAll(() => files.cleanup());

// ---- the oracle ------------------------------------------------------------

interface Expected {
  key: string;
  state: string;
  body: string;
  /** The NDJSON line; null in a JSON array, whose positions the oracle does not track. */
  line: number | null;
}

const isStorable = (s: string) => !s.includes('\u0000') && Buffer.from(s, 'utf8').toString('utf8') === s;

function expectedRecord(v: unknown, line: number | null): Expected | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const names = Object.keys(v).sort();
  if (names.join(',') !== 'body,key,state') return null;
  const { key, state, body } = v as Record<string, unknown>;
  if (typeof key !== 'string' || !KEY.test(key) || !key.startsWith(`${CORPUS}/`)) return null;
  if (state !== 'draft' && state !== 'enacted' && state !== 'retired') return null;
  if (typeof body !== 'string' || Buffer.byteLength(body, 'utf8') > MAX_BODY || !isStorable(body)) return null;
  return { key, state, body, line };
}

/** What a valid file holds, or null when the file is not a valid snapshot. */
function oracle(bytes: Buffer): Expected[] | null {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes); // also drops a leading BOM
  } catch {
    return null;
  }
  const first = text.search(/[^ \t\r\n]/);
  if (first < 0) return null;
  const out: Expected[] = [];
  if (text[first] === '{') {
    for (const [i, line] of text.split('\n').entries()) {
      if (line.trim() === '') continue;
      if (Buffer.byteLength(line, 'utf8') > MAX_RECORD) return null;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        return null;
      }
      const rec = expectedRecord(value, i + 1);
      if (!rec) return null;
      out.push(rec);
    }
  } else if (text[first] === '[') {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return null;
    }
    if (!Array.isArray(value)) return null;
    for (const el of value as unknown[]) {
      const rec = expectedRecord(el, null);
      if (!rec) return null;
      out.push(rec);
    }
  } else return null;
  if (out.length === 0 || new Set(out.map((r) => r.key)).size !== out.length) return null;
  return out;
}

// ---- judging one file ------------------------------------------------------

interface Tally {
  tries: number;
  valid: number;
  refusedByCode: Map<string, number>;
  /** Files the oracle calls invalid that the product accepted (or staged). */
  invalidAccepted: number;
}
const newTally = (): Tally => ({ tries: 0, valid: 0, refusedByCode: new Map(), invalidAccepted: 0 });
const refusalNote = (t: Tally) => [...t.refusedByCode].map(([code, n]) => `${n} ${code}`).join(', ') || 'none';

/** A refusal must be C5's error, naming lines that exist in the file; anything else fails the property. */
function checkRefusal(err: unknown, bytes: Buffer, t: Tally): void {
  if (!(err instanceof CutterError)) throw new Error(`not a CutterError: ${String(err)}`, { cause: err });
  t.refusedByCode.set(err.code, (t.refusedByCode.get(err.code) ?? 0) + 1);
  expect(err).toBeInstanceOf(SnapshotInvalidError);
  const issues: SnapshotIssue[] = (err as SnapshotInvalidError).issues;
  const lines = bytes.filter((b) => b === 0x0a).length + 1;
  expect(issues.length).toBeGreaterThan(0);
  for (const issue of issues) {
    expect(Number.isInteger(issue.line) && issue.line >= 1 && issue.line <= lines, `line ${issue.line} of ${lines}`).toBe(true);
    expect(issue.field === null || (typeof issue.field === 'string' && issue.field.length <= 80)).toBe(true);
    expect(err.message).toContain(formatIssue(issue));
  }
}

let seq = 0;
function writeCase(bytes: Buffer): string {
  seq += 1;
  return files.write(`case-${seq}.snap`, bytes);
}

/** Validates one file; the verdict must be the oracle's and, when valid, the records read must be the oracle's. */
async function judgeParse(bytes: Buffer, t: Tally): Promise<void> {
  t.tries += 1;
  const want = oracle(bytes);
  const path = writeCase(bytes);
  try {
    const got = await validateSnapshot(path, { corpus: CORPUS }).then((check) => ({ check }), (error: unknown) => ({ error }));
    if ('error' in got) {
      checkRefusal(got.error, bytes, t);
      expect(want, 'the product refused a file the oracle calls valid').toBeNull();
      return;
    }
    if (want === null) t.invalidAccepted += 1;
    expect(want, 'the product accepted a file the oracle calls invalid').not.toBeNull();
    t.valid += 1;
    expect(got.check.records).toBe(want?.length);
    const read = readInPieces(bytes, [64 * 1024]).records as { key: string; state: string; body: string; line: number }[];
    const array = got.check.format === 'json-array';
    expect(read.map((r) => ({ key: r.key, state: r.state, body: r.body, line: array ? null : r.line }))).toEqual(want);
  } finally {
    rmSync(path, { force: true });
  }
}

/** Reads bytes pushed in the given piece sizes (cycled); what it found. */
function readInPieces(bytes: Buffer, sizes: number[]) {
  const records: unknown[] = [];
  const reader = new SnapshotReader({ corpus: CORPUS, maxErrors: 1000, onRecord: (r, at, ordinal) => records.push({ ...r, ...at, ordinal }) });
  for (let at = 0, i = 0; at < bytes.length; i += 1) {
    const size = sizes[i % sizes.length] ?? 1;
    reader.push(bytes.subarray(at, at + size));
    at += size;
  }
  reader.end();
  return { records, issues: reader.issues, format: reader.format };
}

// ---- properties ------------------------------------------------------------

async function runProperty<T>(arb: fc.Arbitrary<T>, numRuns: number, body: (value: T) => Promise<void>): Promise<void> {
  await fc.assert(fc.asyncProperty(arb, body), { numRuns });
}

describe('snapshot parser under hostile input (C5)', { timeout: TIMEOUT }, () => {
  it('random bytes: refused with a located SNAPSHOT_INVALID, never a crash, and judged as the oracle judges them', async () => {
    const t = newTally();
    try {
      await runProperty(randomBytes, trials(300, 3000), (v) => judgeParse(v.bytes, t));
    } finally {
      recordOutcome({ group: 'hostile input', fault: 'snapshot: random bytes', tries: t.tries, runsEnded: null, doubleApplications: 0, partialApplications: t.invalidAccepted, lostRuns: 0, forgeriesAccepted: 0, notes: `valid ${t.valid}; refused ${refusalNote(t)}` });
    }
    expect(t.invalidAccepted).toBe(0);
  });

  it('mutated demo snapshots (bytes, lines, fields, UTF-8, huge bodies, array form): the parser agrees with the oracle', async () => {
    const t = newTally();
    try {
      await runProperty(fc.oneof(mutatedDemo, generated), trials(400, 4000), (v) => judgeParse(v.bytes, t));
    } finally {
      recordOutcome({ group: 'hostile input', fault: 'snapshot: mutated demo snapshot', tries: t.tries, runsEnded: null, doubleApplications: 0, partialApplications: t.invalidAccepted, lostRuns: 0, forgeriesAccepted: 0, notes: `valid ${t.valid}; refused ${refusalNote(t)}` });
    }
    expect(t.invalidAccepted).toBe(0);
  });

  it('chunk boundaries: the same bytes pushed in any pieces give the same records and the same issues', async () => {
    let tries = 0;
    const pieces = fc.array(fc.integer({ min: 1, max: 97 }), { minLength: 1, maxLength: 6 });
    await runProperty(fc.tuple(fc.oneof(mutatedDemo, generated, randomBytes), pieces), trials(300, 3000), ([v, sizes]) => {
      tries += 1;
      expect(readInPieces(v.bytes, sizes)).toEqual(readInPieces(v.bytes, [v.bytes.length || 1]));
      return Promise.resolve();
    });
    recordOutcome({ group: 'hostile input', fault: 'snapshot: chunk boundaries', tries, runsEnded: null, doubleApplications: 0, partialApplications: 0, lostRuns: 0, forgeriesAccepted: 0, notes: 'records and issues identical for every chunking of the same bytes' });
  });
});

describe('staging hostile snapshots into Postgres (C5: nothing staged unless the whole file is valid)', { timeout: TIMEOUT }, () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase('fuzz_snapshot');
    await insertTargetRow(db.pool, { name: 'fuzz', corpus: CORPUS });
  });
  afterAll(async () => {
    await db.drop();
  });

  it('a file the oracle calls invalid stages nothing; a valid one stages exactly its records', async () => {
    const t = newTally();
    let stagedRows = 0;
    const sha = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');
    const attempt = async (v: { bytes: Buffer }, viaClient: boolean) => {
      t.tries += 1;
      const runId = `run-fuzz-${String(t.tries).padStart(5, '0')}`;
      await insertRunRow(db.pool, { runId, target: 'fuzz', corpus: CORPUS });
      const want = oracle(v.bytes);
      const path = writeCase(v.bytes);
      const args = { runId, corpus: CORPUS, path };
      // Both entry points: discover's (own transaction) and `cutter plan`'s (a client the caller holds).
      const client = viaClient ? await db.pool.connect() : null;
      const outcome = await (client ? stageSnapshotWith(client, args) : stageSnapshot(db.pool, args)).then(() => null, (e: unknown) => e);
      client?.release();
      rmSync(path, { force: true });
      const { rows } = await db.pool.query<{ key: string; state: string; body: string; body_sha256: string; line_no: number }>(
        'SELECT key, state, body, body_sha256, line_no FROM cutter_governance.snapshot_record WHERE run_id = $1',
        [runId],
      );
      if (want === null && rows.length > 0) t.invalidAccepted += 1;
      if (outcome !== null) {
        checkRefusal(outcome, v.bytes, t);
        expect(rows, 'a refused file left staged rows').toEqual([]);
        expect(want, 'the product refused a file the oracle calls valid').toBeNull();
      } else {
        expect(want, 'staged a file the oracle calls invalid').not.toBeNull();
        t.valid += 1;
        stagedRows += rows.length;
        // What the file says, re-parsed here (the oracle does not track a JSON array's lines).
        const array = want?.[0]?.line === null;
        const byKey = (a: { key: string }, b: { key: string }) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
        const expected = (want ?? []).map((r) => ({ key: r.key, state: r.state, body: r.body, body_sha256: sha(r.body), line_no: r.line }));
        const got = rows.map((r) => ({ ...r, line_no: array ? null : r.line_no }));
        expect(got.sort(byKey)).toEqual(expected.sort(byKey));
      }
      // Nothing leaked to any other run either.
      const total = await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM cutter_governance.snapshot_record');
      expect(total.rows[0]?.n).toBe(stagedRows);
    };
    try {
      await runProperty(fc.tuple(fc.oneof(mutatedDemo, generated), fc.boolean()), trials(40, 400), ([v, viaClient]) => attempt(v, viaClient));
    } finally {
      recordOutcome({ group: 'hostile input', fault: 'snapshot: staged into Postgres (mutated demo, generated records)', tries: t.tries, runsEnded: null, doubleApplications: 0, partialApplications: t.invalidAccepted, lostRuns: 0, forgeriesAccepted: 0, notes: `staged ${t.valid} valid files (${stagedRows} rows, each equal to an independent re-parse); refused ${refusalNote(t)}; rows of refused files: ${t.invalidAccepted}` });
    }
    expect(t.invalidAccepted).toBe(0);
  });
});
