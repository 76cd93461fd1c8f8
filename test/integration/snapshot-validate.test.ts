import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CutterError } from '../../shared/errors.js';
import { SnapshotInvalidError, type SnapshotIssue } from '../../shared/snapshot/issues.js';
import { SNAPSHOT_LIMITS } from '../../shared/snapshot/record.js';
import { stageSnapshot } from '../../shared/snapshot/stage.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { insertRunRow, insertTargetRow, ndjson, scratchDir } from '../support/plan-fixtures.js';

let db: TestDatabase;
const files = scratchDir('snapshot');
let runs = 0;

beforeAll(async () => {
  db = await createTestDatabase('snapshot_validate');
  await insertTargetRow(db.pool, { name: 'tw', corpus: 'W' });
});
afterAll(async () => {
  await db.drop();
  files.cleanup();
});

async function newRun(): Promise<string> {
  runs += 1;
  const runId = `run-snap-${String(runs).padStart(4, '0')}`;
  await insertRunRow(db.pool, { runId, target: 'tw', corpus: 'W' });
  return runId;
}

async function stagedCount(runId?: string): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM cutter_governance.snapshot_record WHERE $1::text IS NULL OR run_id = $1`,
    [runId ?? null],
  );
  return rows[0]?.n ?? -1;
}

/** Stages content that must be refused; returns the error after checking nothing at all was staged. */
async function refused(name: string, content: string | Buffer, maxErrors?: number): Promise<SnapshotInvalidError> {
  const runId = await newRun();
  const before = await stagedCount();
  const path = files.write(name, content);
  const err = await stageSnapshot(db.pool, { runId, corpus: 'W', path, ...(maxErrors ? { maxErrors } : {}) }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SnapshotInvalidError);
  const invalid = err as SnapshotInvalidError;
  expect(invalid).toBeInstanceOf(CutterError);
  expect(invalid.code).toBe('SNAPSHOT_INVALID');
  expect(invalid.kind).toBe('bad_input');
  expect(invalid.message).toContain(path);
  expect(await stagedCount(runId)).toBe(0);
  expect(await stagedCount()).toBe(before);
  return invalid;
}

/** The issue at that line must exist, and the message must say the line and the field. */
function expectIssue(err: SnapshotInvalidError, line: number, field: string | null, text: RegExp): SnapshotIssue {
  const issue = err.issues.find((i) => i.line === line && i.field === field);
  expect(issue, `no issue at line ${line} field ${field} in:\n${err.message}`).toBeDefined();
  expect(issue?.message).toMatch(text);
  const prefix = field === null ? `line ${line}` : `line ${line}: field "${field}"`;
  const shown = err.message.split('\n').find((l) => l.includes(prefix) || (issue?.index !== undefined && l.includes(`line ${line} (index ${issue.index})`)));
  expect(shown, `message does not name line ${line}/${field}:\n${err.message}`).toBeDefined();
  expect(shown).toMatch(text);
  return issue as SnapshotIssue;
}

const rec = (n: number, extra: Record<string, unknown> = {}) => ({ key: `W/${n}`, state: 'draft', body: `body ${n}`, ...extra });

describe('snapshot errors: each named by line and field, nothing staged', () => {
  it('invalid JSON', async () => {
    const text = `${JSON.stringify(rec(1))}\n{"key": "W/2", "state": "draft" "body": "x"}\n${JSON.stringify(rec(3))}\n`;
    const err = await refused('invalid.ndjson', text);
    expectIssue(err, 2, null, /invalid JSON/);
    expect(err.issues).toHaveLength(1);
  });

  it('a truncated NDJSON file (the last record cut off, no final newline)', async () => {
    const text = `${ndjson([rec(1), rec(2)])}{"key":"W/3","state":"dra`;
    const err = await refused('truncated.ndjson', text);
    expectIssue(err, 3, null, /truncated file/);
  });

  it('a truncated JSON array', async () => {
    const text = `[\n  ${JSON.stringify(rec(1))},\n  {"key": "W/2",\n   "state": "dr`;
    const err = await refused('truncated.json', text);
    const issue = expectIssue(err, 3, null, /truncated file: it ends inside the element at index 1/);
    expect(issue.index).toBe(1);
  });

  it('an empty file, one of blank lines only, and an empty array', async () => {
    expectIssue(await refused('empty.ndjson', ''), 1, null, /the file is empty \(0 bytes\)/);
    expectIssue(await refused('blank.ndjson', '\n  \n\n'), 4, null, /the file is empty: 5 bytes of blank space/);
    expectIssue(await refused('empty-array.json', '[\n]\n'), 3, null, /the snapshot contains no records/);
  });

  it('a JSON array that is never closed', async () => {
    const err = await refused('unclosed.json', `[\n${JSON.stringify(rec(1))},\n${JSON.stringify(rec(2))}\n`);
    expectIssue(err, 4, null, /truncated file: it ends before the closing \]/);
  });

  it('bad UTF-8 inside a body', async () => {
    const good = Buffer.from(ndjson([rec(1)]));
    const bad = Buffer.concat([Buffer.from('{"key":"W/2","state":"draft","body":"caf'), Buffer.from([0xff, 0xfe]), Buffer.from('"}\n')]);
    const err = await refused('utf8.ndjson', Buffer.concat([good, bad, Buffer.from(ndjson([rec(3)]))]));
    expectIssue(err, 2, 'body', /bad UTF-8: byte 0xff at byte 41 of the record/);
    expect(err.issues).toHaveLength(1);
  });

  it('an unknown field', async () => {
    const err = await refused('unknown-field.ndjson', ndjson([rec(1), rec(2, { colour: 'red' })]));
    expectIssue(err, 2, 'colour', /unknown field/);
  });

  it('a missing field', async () => {
    const err = await refused('missing.ndjson', ndjson([{ key: 'W/1', body: 'x' }]));
    expectIssue(err, 1, 'state', /missing/);
  });

  it('an invalid key', async () => {
    const err = await refused('bad-key.ndjson', ndjson([rec(1), { key: 'W/has space', state: 'draft', body: 'x' }]));
    expectIssue(err, 2, 'key', /invalid key "W\/has space": must match/);
  });

  it("a key of another corpus", async () => {
    const err = await refused('other-corpus.ndjson', ndjson([rec(1), { key: 'ICX-CONST/001', state: 'draft', body: 'x' }]));
    expectIssue(err, 2, 'key', /belongs to corpus ICX-CONST, not to the target's corpus W/);
  });

  it('a duplicate key, naming both lines', async () => {
    const err = await refused('dup.ndjson', ndjson([rec(1), rec(2), rec(3), rec(4), { ...rec(2), body: 'again' }]));
    expectIssue(err, 5, 'key', /duplicate key "W\/2": already on line 2/);
    expect(err.issues).toHaveLength(1);
  });

  it('a duplicate key in a JSON array, naming both lines and indexes', async () => {
    const err = await refused('dup.json', `[\n${[rec(1), rec(2), rec(1)].map((r) => JSON.stringify(r)).join(',\n')}\n]\n`);
    const issue = expectIssue(err, 4, 'key', /duplicate key "W\/1": already on line 2 \(index 0\)/);
    expect(issue.index).toBe(2);
  });

  it('an oversize body', async () => {
    const body = 'é'.repeat(SNAPSHOT_LIMITS.maxBodyBytes / 2) + 'x'; // 1 MiB + 1 byte of UTF-8
    const err = await refused('oversize.ndjson', ndjson([rec(1), { key: 'W/2', state: 'draft', body }]));
    expectIssue(err, 2, 'body', new RegExp(`oversize body: ${SNAPSHOT_LIMITS.maxBodyBytes + 1} bytes`));
  });

  it('an unknown state', async () => {
    const err = await refused('state.ndjson', ndjson([rec(1, { state: 'published' })]));
    expectIssue(err, 1, 'state', /unknown state "published" \(expected draft, enacted, retired\)/);
  });

  it('a body PostgreSQL could not store as it is (U+0000)', async () => {
    const err = await refused('nul.ndjson', ndjson([rec(1, { body: 'a\u0000b' })]));
    expectIssue(err, 1, 'body', /U\+0000/);
  });

  it('a record that is not an object, and a file that is neither format', async () => {
    expectIssue(await refused('array-line.ndjson', `${ndjson([rec(1)])}["W/2","draft","x"]\n`), 2, null, /expected an object/);
    expectIssue(await refused('csv.ndjson', 'key,state,body\nW/1,draft,x\n'), 1, null, /not a snapshot: .* starts with "k"/);
  });

  it('a broken JSON array (missing comma) is reported where it breaks', async () => {
    const err = await refused('comma.json', `[${JSON.stringify(rec(1))}\n ${JSON.stringify(rec(2))}]`);
    expectIssue(err, 2, null, /expected "," or "\]" after the element at index 0/);
  });

  it('a record longer than the record limit is refused without being held in memory', async () => {
    const body = 'x'.repeat(SNAPSHOT_LIMITS.maxRecordBytes + 10);
    const err = await refused('huge.ndjson', `${JSON.stringify(rec(1))}\n{"key":"W/2","state":"draft","body":"${body}"}\n${JSON.stringify(rec(3))}\n`);
    expectIssue(err, 2, null, /oversize record: more than/);
  });
});

describe('collecting issues', () => {
  const many = (n: number) => ndjson(Array.from({ length: n }, (_, i) => rec(i + 1, { state: 'bogus' })));

  it('lists several issues at once, in line order', async () => {
    const text = ndjson([rec(1, { colour: 1 }), rec(2), { key: 'W/3', state: 'draft' }, rec(4, { state: 'x' })]);
    const err = await refused('several.ndjson', text);
    expect(err.issues.map((i) => [i.line, i.field])).toEqual([
      [1, 'colour'],
      [3, 'body'],
      [4, 'state'],
    ]);
    expect(err.message.split('\n')[0]).toMatch(/is invalid \(3 issues; nothing was staged\)/);
  });

  it('stops at the limit it is given, and says so', async () => {
    const err = await refused('many.ndjson', many(30), 7);
    expect(err.issues).toHaveLength(7);
    expect(err.issues.map((i) => i.line)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(err.stoppedEarly).toBe(true);
    expect(err.message).toMatch(/stopped after 7 issues/);
  });

  it('stops at 20 by default', async () => {
    const err = await refused('many-default.ndjson', many(25));
    expect(err.issues).toHaveLength(SNAPSHOT_LIMITS.defaultMaxErrors);
  });
});

describe('staging a valid snapshot', () => {
  const tricky = [
    { key: 'W/tab', state: 'draft', body: 'a\tb\\c\nnew line\r\nwindows' },
    { key: 'W/uni', state: 'enacted', body: 'ünïcödé 🎉 — ok' },
    { key: 'W/empty', state: 'retired', body: '' },
  ];

  it('NDJSON and a JSON array are told apart by content, not by file name', async () => {
    const asArrayNamedNdjson = files.write('array.ndjson', JSON.stringify(tricky, null, 2));
    const asNdjsonNamedJson = files.write('lines.json', `\ufeff${ndjson(tricky).replace(/\n/g, '\r\n')}`);
    const a = await newRun();
    const b = await newRun();
    const ra = await stageSnapshot(db.pool, { runId: a, corpus: 'W', path: asArrayNamedNdjson });
    const rb = await stageSnapshot(db.pool, { runId: b, corpus: 'W', path: asNdjsonNamedJson });
    expect(ra.records).toBe(3);
    expect(rb.records).toBe(3);
    const staged = async (runId: string) =>
      (
        await db.pool.query<{ key: string; state: string; body: string; ok: boolean }>(
          `SELECT key, state, body, body_sha256 = encode(sha256(convert_to(body, 'UTF8')), 'hex') AS ok
             FROM cutter_governance.snapshot_record WHERE run_id = $1 ORDER BY key`,
          [runId],
        )
      ).rows;
    const expected = [...tricky].sort((x, y) => (x.key < y.key ? -1 : 1)).map((r) => ({ ...r, ok: true }));
    expect(await staged(a)).toEqual(expected);
    expect(await staged(b)).toEqual(expected);
  });

  it('records line numbers, the byte count and the file sha256; staging again replaces the rows', async () => {
    const runId = await newRun();
    const text = `\n${ndjson([rec(1), rec(2)])}\n${ndjson([rec(3)])}`;
    const path = files.write('lines.ndjson', text);
    const first = await stageSnapshot(db.pool, { runId, corpus: 'W', path });
    const { createHash } = await import('node:crypto');
    expect(first).toEqual({ records: 3, bytes: Buffer.byteLength(text), sha256: createHash('sha256').update(text).digest('hex') });
    const lines = await db.pool.query<{ key: string; line_no: number }>(
      'SELECT key, line_no FROM cutter_governance.snapshot_record WHERE run_id = $1 ORDER BY line_no',
      [runId],
    );
    expect(lines.rows).toEqual([
      { key: 'W/1', line_no: 2 },
      { key: 'W/2', line_no: 3 },
      { key: 'W/3', line_no: 5 },
    ]);
    await stageSnapshot(db.pool, { runId, corpus: 'W', path });
    expect(await stagedCount(runId)).toBe(3);
    await stageSnapshot(db.pool, { runId, corpus: 'W', path: files.write('one.ndjson', ndjson([rec(9)])) });
    const after = await db.pool.query<{ key: string }>('SELECT key FROM cutter_governance.snapshot_record WHERE run_id = $1', [runId]);
    expect(after.rows).toEqual([{ key: 'W/9' }]);
  });

  it('stages keys that only share a hash with an earlier key, and refuses a key that repeats', async () => {
    // An index under which every key "collides" with the first: the staging pass suspects every record.
    const collideAll = () => {
      let first = -1;
      return { add: (_key: string, ordinal: number) => (first < 0 ? ((first = ordinal), -1) : first) };
    };
    const unique = files.write('collide-unique.ndjson', ndjson([{ key: 'W/1', state: 'draft', body: 'a' }, { key: 'W/2', state: 'draft', body: 'b' }, { key: 'W/3', state: 'enacted', body: 'c' }]));
    const runId = await newRun();
    await expect(stageSnapshot(db.pool, { runId, corpus: 'W', path: unique, keyIndex: collideAll() })).resolves.toMatchObject({ records: 3 });
    expect(await stagedCount(runId)).toBe(3);

    const repeated = files.write('collide-repeat.ndjson', ndjson([{ key: 'W/1', state: 'draft', body: 'a' }, { key: 'W/2', state: 'draft', body: 'b' }, { key: 'W/1', state: 'enacted', body: 'c' }]));
    const other = await newRun();
    const err = await stageSnapshot(db.pool, { runId: other, corpus: 'W', path: repeated, keyIndex: collideAll() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SnapshotInvalidError);
    expect((err as SnapshotInvalidError).message).toMatch(/line 3.*W\/1.*line 1|line 1.*line 3/s);
    expect(await stagedCount(other)).toBe(0);
  });

  it('a failed validation leaves an earlier staging of the run as it was', async () => {
    const runId = await newRun();
    await stageSnapshot(db.pool, { runId, corpus: 'W', path: files.write('keep.ndjson', ndjson([rec(1), rec(2)])) });
    const bad = files.write('bad-later.ndjson', ndjson([rec(1), rec(1)]));
    await expect(stageSnapshot(db.pool, { runId, corpus: 'W', path: bad })).rejects.toMatchObject({ code: 'SNAPSHOT_INVALID' });
    expect(await stagedCount(runId)).toBe(2);
  });

  it('a missing file is bad input naming the path', async () => {
    const runId = await newRun();
    await expect(stageSnapshot(db.pool, { runId, corpus: 'W', path: files.path('nope.ndjson') })).rejects.toMatchObject({
      code: 'SNAPSHOT_NOT_FOUND',
      kind: 'bad_input',
      message: expect.stringMatching(/nope\.ndjson does not exist/) as unknown,
    });
  });

  it('a run that does not exist gets a clear error, not a foreign-key violation', async () => {
    const path = files.write('norun.ndjson', ndjson([rec(1)]));
    await expect(stageSnapshot(db.pool, { runId: 'run-missing-1', corpus: 'W', path })).rejects.toMatchObject({ code: 'RUN_UNKNOWN' });
  });
});
