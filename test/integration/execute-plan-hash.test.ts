import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { migrate } from '../../shared/deploy/migrate.js';
import { createPool, ident, type Pool } from '../../shared/db/pool.js';
import { buildPlan } from '../../shared/plan/build.js';
import {
  IN_DATABASE_MAX_ITEMS,
  inDatabasePlanSha256,
  planSha256,
  recomputePlanSha256,
  streamedPlanSha256,
  type PlanItemFields,
} from '../../shared/plan/hash.js';
import { stageSnapshot } from '../../shared/snapshot/stage.js';
import { getTarget } from '../../shared/targets/registry.js';
import { createTestDatabase, dropDatabase, testDatabaseUrl, uniqueDatabaseName, type TestDatabase } from '../support/db.js';
import { insertRunRow, insertTargetRow, ndjson, scratchDir, seedUnits } from '../support/plan-fixtures.js';

/**
 * The plan hash execute recomputes has three forms that must agree byte for
 * byte: planSha256 over canonicalLine in Node (the documented definition),
 * the COPY stream hashed in Node, and the text built and hashed inside
 * PostgreSQL. Keys are chosen so that byte order differs from a dictionary
 * order (case, '-', '.', '_', ':', '/', digits), which only an explicit
 * COLLATE "C" gets right: the same checks run in the template's database
 * and in one whose default collation is ICU en-US, where the primary key's
 * index order is not byte order.
 */

let db: TestDatabase;
let icu: { name: string; pool: Pool };
const files = scratchDir('exechash');
let runs = 0;

const KEYS = ['H/a-b', 'H/a.b', 'H/aB', 'H/ab', 'H/A', 'H/a_b', 'H/a:b', 'H/a/b', 'H/a', 'H/9', 'H/10', 'H/Z-'];

/** Half the keys exist (draft, some at version 3), half are new: every op kind appears. */
async function seed(pool: Pool): Promise<void> {
  await seedUnits(pool, 'H', KEYS.filter((_, i) => i % 2 === 0).map((key, i) => ({ key, state: 'draft' as const, body: `${key} v1`, version: i % 3 === 0 ? 3 : 1 })));
  await insertTargetRow(pool, { name: 'h', corpus: 'H' });
}

beforeAll(async () => {
  db = await createTestDatabase('exechash');
  await seed(db.pool);
  const name = uniqueDatabaseName('exechashicu');
  const admin = new pg.Client({ connectionString: inject('postgresUrl') });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${ident(name)} TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'`);
  } finally {
    await admin.end();
  }
  const url = testDatabaseUrl(name);
  await migrate(url, { execRole: 'cutter_exec' });
  icu = { name, pool: createPool(url, { max: 3, applicationName: 'cutter-test' }) };
  await seed(icu.pool);
});
afterAll(async () => {
  await db.drop();
  await icu.pool.end().catch(() => undefined);
  await dropDatabase(icu.name);
  files.cleanup();
});

async function planned(pool: Pool, records: { key: string; state: string; body: string }[]): Promise<string> {
  runs += 1;
  const runId = `run-hash-${String(runs).padStart(4, '0')}`;
  await insertRunRow(pool, { runId, target: 'h', corpus: 'H' });
  await stageSnapshot(pool, { runId, corpus: 'H', path: files.write(`${runId}.ndjson`, ndjson(records)) });
  const target = await getTarget(pool, 'h');
  if (!target) throw new Error('no target');
  const client = await pool.connect();
  try {
    await buildPlan(client, { runId, target });
  } finally {
    client.release();
  }
  return runId;
}

async function forms(pool: Pool, runId: string): Promise<{ node: string; streamed: string; inDatabase: string | undefined; recomputed: string; frozen: string }> {
  const { rows } = await pool.query<PlanItemFields>(
    `SELECT key, op, transition, pre_state, pre_version, pre_body_sha256, post_state, post_version, post_body_sha256
       FROM cutter_governance.cut_change_item WHERE run_id = $1`,
    [runId],
  );
  const set = await pool.query<{ plan_sha256: string }>('SELECT plan_sha256 FROM cutter_governance.cut_change_set WHERE run_id = $1', [runId]);
  const client = await pool.connect();
  try {
    return {
      node: planSha256('H', rows.reverse()),
      streamed: await streamedPlanSha256(client, runId),
      inDatabase: (await inDatabasePlanSha256(client, runId))?.sha256,
      recomputed: await recomputePlanSha256(client, runId),
      frozen: set.rows[0]?.plan_sha256 ?? '',
    };
  } finally {
    client.release();
  }
}

describe.each([
  ['the template database (C.UTF-8)', () => db.pool],
  ['a database collated by ICU en-US', () => icu.pool],
])('plan_sha256, recomputed, in %s', (_label, poolOf) => {
  it('is the same in Node, streamed through COPY and built in PostgreSQL, for every op and key order', async () => {
    const runId = await planned(poolOf(), KEYS.map((key, i) => ({ key, state: i % 4 === 0 ? 'enacted' : 'draft', body: i % 3 === 0 ? `${key} v2` : `${key} v1` })));
    const f = await forms(poolOf(), runId);
    const ops = await poolOf().query<{ op: string }>('SELECT DISTINCT op FROM cutter_governance.cut_change_item WHERE run_id = $1 ORDER BY op', [runId]);
    expect(ops.rows.map((r) => r.op)).toEqual(['create', 'revise', 'revise+transition', 'transition']);
    expect(new Set(Object.values(f))).toEqual(new Set([f.node]));
  });

  it('is the same for an empty plan (the header alone)', async () => {
    const runId = await planned(poolOf(), KEYS.filter((_, i) => i % 2 === 0).map((key) => ({ key, state: 'draft', body: `${key} v1` })));
    const f = await forms(poolOf(), runId);
    expect(f.node).toBe(planSha256('H', []));
    expect(new Set(Object.values(f))).toEqual(new Set([f.node]));
  });

  it('streams a plan above the in-database size, to the same value', async () => {
    const runId = await planned(poolOf(), KEYS.map((key) => ({ key, state: 'enacted', body: `${key} v1` })));
    const frozen = (await forms(poolOf(), runId)).frozen;
    await poolOf().query('UPDATE cutter_governance.cut_change_set SET unit_count = $2 WHERE run_id = $1', [runId, IN_DATABASE_MAX_ITEMS + 1]);
    const client = await poolOf().connect();
    try {
      expect(await recomputePlanSha256(client, runId)).toBe(frozen);
    } finally {
      client.release();
    }
  });

  it('changes when an item changes', async () => {
    const runId = await planned(poolOf(), KEYS.map((key) => ({ key, state: 'enacted', body: `${key} v9` })));
    const before = (await forms(poolOf(), runId)).inDatabase;
    await poolOf().query(`UPDATE cutter_governance.cut_change_item SET post_version = post_version + 1 WHERE run_id = $1 AND key = 'H/a_b'`, [runId]);
    const after = await forms(poolOf(), runId);
    expect(after.inDatabase).not.toBe(before);
    expect(new Set([after.node, after.streamed, after.inDatabase, after.recomputed])).toEqual(new Set([after.node]));
  });
});
