import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { previewPlan, type PlanPreview } from '../../shared/plan/preview.js';
import { acquireCorpusLock } from '../../shared/targets/lock.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { digestAllTables, insertRunRow, insertTargetRow, ndjson, scratchDir, seedUnits } from '../support/plan-fixtures.js';

let db: TestDatabase;
const files = scratchDir('preview');

const units = [
  { key: 'V/1', state: 'draft' as const, body: 'one' },
  { key: 'V/2', state: 'draft' as const, body: 'two' },
  { key: 'V/3', state: 'enacted' as const, body: 'three' },
];
const snapshot = ndjson([
  { key: 'V/1', state: 'enacted', body: 'one' },
  { key: 'V/2', state: 'draft', body: 'two, revised' },
  { key: 'V/3', state: 'enacted', body: 'three' },
  { key: 'V/4', state: 'draft', body: 'four' },
]);

beforeAll(async () => {
  db = await createTestDatabase('plan_preview');
  await seedUnits(db.pool, 'V', units);
  await seedUnits(db.pool, 'VL', units.map((u) => ({ ...u, key: u.key.replace('V/', 'VL/') })));
  await insertTargetRow(db.pool, { name: 'v', corpus: 'V', maxUnits: 10, allowed: ['new->draft', 'draft->enacted', 'revise'] });
});
afterAll(async () => {
  await db.drop();
  files.cleanup();
});

const verdicts = (p: PlanPreview) => Object.fromEntries(p.criteria.map((c) => [c.id, c.pass]));

async function preview(target: string, text: string, mode: 'live' | 'dry' = 'live'): Promise<PlanPreview> {
  return previewPlan(db.pool, { target, path: files.write(`${target}-${mode}.ndjson`, text), mode, operator: 'tester' });
}

describe('cutter plan, as a library: C2–C6, each failing alone', () => {
  it('passes all five for a good snapshot and returns the plan', async () => {
    const p = await preview('v', snapshot);
    expect(verdicts(p)).toEqual({ C2: true, C3: true, C4: true, C5: true, C6: true });
    expect(p.error).toBeNull();
    expect(p.plan).toMatchObject({ unit_count: 3, by_op: { create: 1, revise: 1, transition: 1 }, by_transition: { 'draft->enacted': 1, 'new->draft': 1, revise: 1 } });
    expect(p.snapshot).toMatchObject({ records: 4, bytes: Buffer.byteLength(snapshot) });
  });

  it('C2: the corpus has no units (emptied since registration)', async () => {
    await insertTargetRow(db.pool, { name: 'v-empty', corpus: 'VEMPTY' });
    const p = await preview('v-empty', ndjson([{ key: 'VEMPTY/1', state: 'draft', body: 'x' }]));
    expect(verdicts(p)).toEqual({ C2: false, C3: true, C4: true });
    expect(p.error).toMatchObject({ code: 'C2_EMPTY_CORPUS', kind: 'refused' });
  });

  it('C3: a live plan of a protected target; the same plan dry passes', async () => {
    await insertTargetRow(db.pool, { name: 'v-prot', corpus: 'VP', protected: true, allowed: ['revise'] });
    await seedUnits(db.pool, 'VP', [{ key: 'VP/1', state: 'enacted', body: 'p' }]);
    const text = ndjson([{ key: 'VP/1', state: 'enacted', body: 'p2' }]);
    const live = await preview('v-prot', text, 'live');
    expect(verdicts(live)).toEqual({ C2: true, C3: false, C4: true });
    expect(live.error).toMatchObject({ code: 'C3_PROTECTED', kind: 'refused' });
    const dry = await preview('v-prot', text, 'dry');
    expect(verdicts(dry)).toEqual({ C2: true, C3: true, C4: true, C5: true, C6: true });
    expect(dry.criteria.find((c) => c.id === 'C3')?.reason).toMatch(/allowed because a dry run writes nothing/);
  });

  it('C4: another active run holds the corpus', async () => {
    await insertTargetRow(db.pool, { name: 'v-locked', corpus: 'VL' });
    await insertRunRow(db.pool, { runId: 'run-holder-01', target: 'v-locked', corpus: 'VL', status: 'running' });
    await acquireCorpusLock(db.pool, { corpus: 'VL', runId: 'run-holder-01' });
    const p = await preview('v-locked', snapshot.replace(/"V\//g, '"VL/'));
    expect(verdicts(p)).toEqual({ C2: true, C3: true, C4: false });
    expect(p.error).toMatchObject({ code: 'C4_CORPUS_LOCKED', kind: 'refused', message: expect.stringContaining('run-holder-01') as unknown });
  });

  it('C5: the snapshot is invalid (bad input, with its issues)', async () => {
    const p = await preview('v', `${snapshot}{"key":"V/9","state":"gone","body":"x"}\n`);
    expect(verdicts(p)).toEqual({ C2: true, C3: true, C4: true, C5: false });
    expect(p.error).toMatchObject({ code: 'SNAPSHOT_INVALID', kind: 'bad_input', issues: [{ line: 5, field: 'state' }] });
    expect(p.plan).toBeNull();
  });

  it('C6: the plan is beyond the allowance', async () => {
    await insertTargetRow(db.pool, { name: 'v-tight', corpus: 'V', maxUnits: 2, allowed: ['new->draft', 'draft->enacted', 'revise'] });
    const p = await preview('v-tight', snapshot);
    expect(verdicts(p)).toEqual({ C2: true, C3: true, C4: true, C5: true, C6: false });
    expect(p.error).toMatchObject({ code: 'C6_ALLOWANCE', kind: 'refused' });
    expect(p.criteria.at(-1)?.reason).toMatch(/3 units is over max_units 2/);
  });

  it('writes nothing at all, whatever the outcome', async () => {
    const before = await digestAllTables(db.pool);
    await preview('v', snapshot);
    await preview('v-tight', snapshot);
    await preview('v', '{"key":');
    await preview('v-prot', ndjson([{ key: 'VP/1', state: 'enacted', body: 'p2' }]), 'dry');
    expect(await digestAllTables(db.pool)).toEqual(before);
  });

  it('an unknown target or a missing file is bad input', async () => {
    await expect(previewPlan(db.pool, { target: 'nope', path: files.write('x.ndjson', snapshot), mode: 'live', operator: 't' })).rejects.toMatchObject({ code: 'TARGET_UNKNOWN', kind: 'bad_input' });
    await expect(previewPlan(db.pool, { target: 'v', path: files.path('missing.ndjson'), mode: 'live', operator: 't' })).rejects.toMatchObject({ code: 'SNAPSHOT_NOT_FOUND', kind: 'bad_input' });
  });
});
