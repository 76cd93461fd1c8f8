import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadGateRun } from '../../shared/approval/binding.js';
import { withTransaction } from '../../shared/db/pool.js';
import type { PlanSummary } from '../../shared/jobs/results.js';
import { buildPlan } from '../../shared/plan/build.js';
import { planScope, scopeOfSummary } from '../../shared/plan/scope.js';
import { planSha256, recomputePlanSha256, type PlanItemFields } from '../../shared/plan/hash.js';
import { stageSnapshot } from '../../shared/snapshot/stage.js';
import { getTarget, type TargetRecord } from '../../shared/targets/registry.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { insertRunRow, insertTargetRow, ndjson, scratchDir, seedUnits, sha256 } from '../support/plan-fixtures.js';

let db: TestDatabase;
const files = scratchDir('plan');
let runs = 0;

beforeAll(async () => {
  db = await createTestDatabase('plan');
  await seedUnits(db.pool, 'P', [
    { key: 'P/draft-enact', state: 'draft', body: 'de' },
    { key: 'P/draft-retire', state: 'draft', body: 'dr' },
    { key: 'P/enacted-retire', state: 'enacted', body: 'er' },
    { key: 'P/revise', state: 'draft', body: 'rv v1' },
    { key: 'P/revise-enact', state: 'draft', body: 're v3', version: 3 },
    { key: 'P/same', state: 'enacted', body: 'same' },
    { key: 'P/retired-same', state: 'retired', body: 'gone' },
    { key: 'P/absent', state: 'draft', body: 'not in the snapshot' },
  ]);
  await insertTargetRow(db.pool, { name: 'p', corpus: 'P' });
});
afterAll(async () => {
  await db.drop();
  files.cleanup();
});

/** The snapshot exercising every op and transition kind, plus units that must produce no item. */
const SNAPSHOT = [
  { key: 'P/draft-enact', state: 'enacted', body: 'de' },
  { key: 'P/draft-retire', state: 'retired', body: 'dr' },
  { key: 'P/enacted-retire', state: 'retired', body: 'er' },
  { key: 'P/revise', state: 'draft', body: 'rv v2' },
  { key: 'P/revise-enact', state: 'enacted', body: 're v4' },
  { key: 'P/same', state: 'enacted', body: 'same' },
  { key: 'P/retired-same', state: 'retired', body: 'gone' },
  { key: 'P/new-draft', state: 'draft', body: 'nd' },
  { key: 'P/new-enacted', state: 'enacted', body: 'ne' },
];

async function target(name: string): Promise<TargetRecord> {
  const t = await getTarget(db.pool, name);
  if (!t) throw new Error(`no target ${name}`);
  return t;
}

/** A run of that target with the given snapshot text staged. */
async function stagedRun(targetName: string, text: string, mode: 'dry' | 'live' = 'dry'): Promise<string> {
  const t = await target(targetName);
  runs += 1;
  const runId = `run-plan-${String(runs).padStart(4, '0')}`;
  await insertRunRow(db.pool, { runId, target: t.name, corpus: t.corpus, mode });
  await stageSnapshot(db.pool, { runId, corpus: t.corpus, path: files.write(`${runId}.snapshot`, text) });
  return runId;
}

async function plan(targetName: string, runId: string): Promise<PlanSummary> {
  const t = await target(targetName);
  return withTransaction(db.pool, (client) => buildPlan(client, { runId, target: t }));
}

async function items(runId: string) {
  const { rows } = await db.pool.query<PlanItemFields & { unit_id: number | null; post_body: string | null }>(
    `SELECT key, op, transition, unit_id, pre_state, pre_version, pre_body_sha256, post_state, post_version, post_body_sha256, post_body
       FROM cutter_governance.cut_change_item WHERE run_id = $1 ORDER BY key`,
    [runId],
  );
  return rows;
}

async function unitId(key: string): Promise<number> {
  const { rows } = await db.pool.query<{ id: number }>('SELECT id FROM public.information_unit WHERE key = $1', [key]);
  return rows[0]?.id ?? -1;
}

function shuffled<T>(list: T[], seed: number): T[] {
  const out = [...list];
  let s = seed;
  for (let i = out.length - 1; i > 0; i -= 1) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

describe('the plan: every op and transition kind', () => {
  it('diffs the snapshot against the corpus into one item per changed unit', async () => {
    const runId = await stagedRun('p', ndjson(SNAPSHOT));
    const summary = await plan('p', runId);
    expect(summary.unit_count).toBe(7);
    expect(summary.by_op).toEqual({ create: 2, revise: 1, 'revise+transition': 1, transition: 3 });
    expect(summary.by_transition).toEqual({
      'draft->enacted': 2,
      'draft->retired': 1,
      'enacted->retired': 1,
      'new->draft': 1,
      'new->enacted': 1,
      revise: 2,
    });
    const pre = (key: string, state: string, version: number, body: string) => ({
      unit_id: expect.any(Number) as unknown,
      pre_state: state,
      pre_version: version,
      pre_body_sha256: sha256(body),
      key,
    });
    expect(await items(runId)).toEqual([
      { ...pre('P/draft-enact', 'draft', 1, 'de'), op: 'transition', transition: 'draft->enacted', post_state: 'enacted', post_version: 1, post_body_sha256: sha256('de'), post_body: null },
      { ...pre('P/draft-retire', 'draft', 1, 'dr'), op: 'transition', transition: 'draft->retired', post_state: 'retired', post_version: 1, post_body_sha256: sha256('dr'), post_body: null },
      { ...pre('P/enacted-retire', 'enacted', 1, 'er'), op: 'transition', transition: 'enacted->retired', post_state: 'retired', post_version: 1, post_body_sha256: sha256('er'), post_body: null },
      { key: 'P/new-draft', op: 'create', transition: 'new->draft', unit_id: null, pre_state: null, pre_version: null, pre_body_sha256: null, post_state: 'draft', post_version: 1, post_body_sha256: sha256('nd'), post_body: 'nd' },
      { key: 'P/new-enacted', op: 'create', transition: 'new->enacted', unit_id: null, pre_state: null, pre_version: null, pre_body_sha256: null, post_state: 'enacted', post_version: 1, post_body_sha256: sha256('ne'), post_body: 'ne' },
      { ...pre('P/revise', 'draft', 1, 'rv v1'), op: 'revise', transition: null, post_state: 'draft', post_version: 2, post_body_sha256: sha256('rv v2'), post_body: 'rv v2' },
      { ...pre('P/revise-enact', 'draft', 3, 're v3'), op: 'revise+transition', transition: 'draft->enacted', post_state: 'enacted', post_version: 4, post_body_sha256: sha256('re v4'), post_body: 're v4' },
    ]);
    const byKey = new Map((await items(runId)).map((i) => [i.key, i.unit_id]));
    expect(byKey.get('P/revise')).toBe(await unitId('P/revise'));
    // Stored with the set: the summary and the hash of exactly these items.
    const set = await db.pool.query('SELECT plan_sha256, unit_count, by_op, by_transition, status FROM cutter_governance.cut_change_set WHERE run_id = $1', [runId]);
    expect(set.rows[0]).toEqual({ ...summary, status: 'planned' });
    // The approval path reads the scope from that summary, execute counts it from the items: the same scope.
    const fromItems = await planScope(db.pool, runId);
    expect(fromItems).toEqual({ unitCount: 7, transitions: ['draft->enacted', 'draft->retired', 'enacted->retired', 'new->draft', 'new->enacted', 'revise'] });
    expect(scopeOfSummary(summary)).toEqual(fromItems);
    expect((await loadGateRun(db.pool, runId))?.scope).toEqual(fromItems);
  });

  it('building the plan again returns the same plan and writes nothing more', async () => {
    const runId = await stagedRun('p', ndjson(SNAPSHOT));
    const first = await plan('p', runId);
    const again = await plan('p', runId);
    expect(again).toEqual(first);
    expect(await items(runId)).toHaveLength(7);
  });

  it('a snapshot equal to the corpus gives an empty plan', async () => {
    const runId = await stagedRun('p', ndjson([{ key: 'P/same', state: 'enacted', body: 'same' }]));
    const summary = await plan('p', runId);
    expect(summary).toMatchObject({ unit_count: 0, by_op: {}, by_transition: {} });
    expect(summary.plan_sha256).toBe(planSha256('P', []));
  });
});

describe('plan_sha256', () => {
  const many = Array.from({ length: 300 }, (_, i) => ({ key: `P/n${String(i).padStart(3, '0')}`, state: i % 3 ? 'draft' : 'enacted', body: `new unit ${i}` }));
  const all = [...SNAPSHOT, ...many];

  it('is the same for the same snapshot and corpus, whatever the line order or format', async () => {
    const hashes = new Set<string>();
    for (const [n, text] of [
      ndjson(all),
      ndjson(shuffled(all, 7)),
      ndjson(shuffled(all, 99)),
      JSON.stringify(shuffled(all, 3), null, 1),
    ].entries()) {
      const summary = await plan('p', await stagedRun('p', text));
      expect(summary.unit_count, `variant ${n}`).toBe(307);
      hashes.add(summary.plan_sha256);
    }
    expect(hashes.size).toBe(1);
  });

  it('is the documented canonical hash of the stored items, and execute can recompute it', async () => {
    const runId = await stagedRun('p', ndjson(shuffled(all, 5)));
    const summary = await plan('p', runId);
    expect(planSha256('P', shuffled(await items(runId), 11))).toBe(summary.plan_sha256);
    const client = await db.pool.connect();
    try {
      expect(await recomputePlanSha256(client, runId)).toBe(summary.plan_sha256);
    } finally {
      client.release();
    }
  });

  it('changes when anything the plan would do changes', async () => {
    const base = (await plan('p', await stagedRun('p', ndjson(all)))).plan_sha256;
    const otherBody = all.map((r) => (r.key === 'P/n150' ? { ...r, body: 'new unit 150!' } : r));
    const otherState = all.map((r) => (r.key === 'P/draft-enact' ? { ...r, state: 'retired' } : r));
    const fewer = all.filter((r) => r.key !== 'P/n000');
    for (const variant of [otherBody, otherState, fewer]) {
      expect((await plan('p', await stagedRun('p', ndjson(variant)))).plan_sha256).not.toBe(base);
    }
  });
});

describe('refusals write nothing', () => {
  async function noChangeSet(runId: string): Promise<void> {
    const set = await db.pool.query('SELECT 1 FROM cutter_governance.cut_change_set WHERE run_id = $1', [runId]);
    const its = await db.pool.query('SELECT 1 FROM cutter_governance.cut_change_item WHERE run_id = $1', [runId]);
    expect(set.rowCount).toBe(0);
    expect(its.rowCount).toBe(0);
  }

  it('forbidden transitions are refused, naming every key', async () => {
    await seedUnits(db.pool, 'F', [
      { key: 'F/enacted', state: 'enacted', body: 'e' },
      { key: 'F/retired', state: 'retired', body: 'r' },
      { key: 'F/retired-revised', state: 'retired', body: 'r2' },
      { key: 'F/fine', state: 'draft', body: 'f' },
    ]);
    await insertTargetRow(db.pool, { name: 'f', corpus: 'F' });
    const runId = await stagedRun(
      'f',
      ndjson([
        { key: 'F/fine', state: 'enacted', body: 'f' },
        { key: 'F/enacted', state: 'draft', body: 'e' },
        { key: 'F/retired', state: 'enacted', body: 'r' },
        { key: 'F/retired-revised', state: 'retired', body: 'r2, edited' },
        { key: 'F/born-retired', state: 'retired', body: 'b' },
      ]),
    );
    const err = (await plan('f', runId).then(
      () => new Error('expected a refusal'),
      (e: unknown) => e as Error,
    )) as Error & { code?: string; kind?: string };
    expect(err).toMatchObject({ code: 'PLAN_FORBIDDEN_TRANSITION', kind: 'refused' });
    expect(err.message).toContain('4 forbidden transition(s)');
    for (const named of ['F/enacted enacted->draft', 'F/retired retired->enacted', 'F/retired-revised retired (revise)', 'F/born-retired new->retired']) {
      expect(err.message).toContain(named);
    }
    expect(err.message).not.toContain('F/fine');
    await noChangeSet(runId);
  });

  it('C6: more units than max_units (and nothing else wrong)', async () => {
    await insertTargetRow(db.pool, { name: 'p-small', corpus: 'P', maxUnits: 6 });
    const runId = await stagedRun('p-small', ndjson(SNAPSHOT));
    await expect(plan('p-small', runId)).rejects.toMatchObject({
      code: 'C6_ALLOWANCE',
      kind: 'refused',
      message: 'C6: the plan exceeds target p-small\'s allowance: 7 units is over max_units 6',
    });
    await noChangeSet(runId);
  });

  it('C6: a transition kind the target does not allow (revise counts as one)', async () => {
    await insertTargetRow(db.pool, { name: 'p-norevise', corpus: 'P', allowed: ['new->draft', 'new->enacted', 'draft->enacted', 'draft->retired', 'enacted->retired'] });
    const runId = await stagedRun('p-norevise', ndjson(SNAPSHOT));
    await expect(plan('p-norevise', runId)).rejects.toMatchObject({
      code: 'C6_ALLOWANCE',
      message: expect.stringMatching(/transitions not in allowed_transitions \(.*\): revise \(2 units\)$/) as unknown,
    });
    await noChangeSet(runId);
  });

  it('C3: a live plan of a protected target is refused; a dry one is built', async () => {
    await seedUnits(db.pool, 'Q', [{ key: 'Q/1', state: 'enacted', body: 'q' }]);
    await insertTargetRow(db.pool, { name: 'q-protected', corpus: 'Q', protected: true });
    const text = ndjson([{ key: 'Q/1', state: 'enacted', body: 'q, revised' }]);
    const live = await stagedRun('q-protected', text, 'live');
    await expect(plan('q-protected', live)).rejects.toMatchObject({ code: 'C3_PROTECTED', kind: 'refused', message: expect.stringMatching(/target q-protected is protected/) as unknown });
    await noChangeSet(live);
    const dry = await stagedRun('q-protected', text, 'dry');
    await expect(plan('q-protected', dry)).resolves.toMatchObject({ unit_count: 1, by_op: { revise: 1 } });
  });

  it('C3: an unprotected target cannot cut live a corpus that another target protects', async () => {
    await insertTargetRow(db.pool, { name: 'q-side-door', corpus: 'Q' });
    const live = await stagedRun('q-side-door', ndjson([{ key: 'Q/1', state: 'retired', body: 'q' }]), 'live');
    await expect(plan('q-side-door', live)).rejects.toMatchObject({ code: 'C3_PROTECTED', message: expect.stringMatching(/corpus Q is protected by target q-protected/) as unknown });
  });

  it("a refusal inside the caller's transaction leaves that transaction usable", async () => {
    const runId = await stagedRun('p-small', ndjson(SNAPSHOT));
    const t = await target('p-small');
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      await expect(buildPlan(client, { runId, target: t })).rejects.toMatchObject({ code: 'C6_ALLOWANCE' });
      const still = await client.query<{ one: number }>('SELECT 1 AS one');
      expect(still.rows[0]?.one).toBe(1);
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    await noChangeSet(runId);
  });
});
