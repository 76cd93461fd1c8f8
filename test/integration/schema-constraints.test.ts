import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase('constraints');
});
afterAll(async () => {
  await db.drop();
});

const sqlState = async (promise: Promise<unknown>): Promise<string | undefined> => {
  try {
    await promise;
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code;
  }
};

describe('constraints live in the database', () => {
  it('execution_enabled() is false on a fresh database, with and without a run id', async () => {
    const { rows } = await db.pool.query<{ any: boolean; one: boolean }>(
      `SELECT cutter_governance.execution_enabled() AS any, cutter_governance.execution_enabled('run-1234') AS one`,
    );
    expect(rows[0]).toEqual({ any: false, one: false });
  });

  it('refuses an invalid state', async () => {
    const code = await sqlState(
      db.pool.query(`INSERT INTO information_unit (corpus, key, state, current_version) VALUES ('C', 'C/1', 'published', 1)`),
    );
    expect(code).toBe('23514');
  });

  it('refuses a duplicate (corpus, key) but allows the key in another corpus', async () => {
    await db.pool.query(`INSERT INTO information_unit (corpus, key, state, current_version) VALUES ('A', 'K/1', 'draft', 1)`);
    const code = await sqlState(
      db.pool.query(`INSERT INTO information_unit (corpus, key, state, current_version) VALUES ('A', 'K/1', 'enacted', 1)`),
    );
    expect(code).toBe('23505');
    await db.pool.query(`INSERT INTO information_unit (corpus, key, state, current_version) VALUES ('B', 'K/1', 'draft', 1)`);
  });

  it('refuses a body_sha256 that is not the hash of the body', async () => {
    const { rows } = await db.pool.query<{ id: number }>(
      `INSERT INTO information_unit (corpus, key, state, current_version) VALUES ('H', 'H/1', 'draft', 1) RETURNING id`,
    );
    const code = await sqlState(
      db.pool.query(`INSERT INTO unit_version (unit_id, version, body, body_sha256) VALUES ($1, 1, 'text', $2)`, [
        rows[0]?.id,
        'a'.repeat(64),
      ]),
    );
    expect(code).toBe('23514');
  });

  it('allows one change set per run and each nonce once', async () => {
    await db.pool.query(
      `INSERT INTO cutter_governance.target_registry (name, corpus, owner, protected, max_units, allowed_transitions, registered_by)
       VALUES ('t1', 'A', 'ops', false, 10, ARRAY['revise'], 'test')`,
    );
    await db.pool.query(`INSERT INTO cutter_governance.run (run_id, target, corpus, mode, operator) VALUES ('run-00000001', 't1', 'A', 'dry', 'op')`);
    const set = `INSERT INTO cutter_governance.cut_change_set (run_id, target, corpus, plan_sha256, unit_count, by_op, by_transition)
                 VALUES ('run-00000001', 't1', 'A', repeat('a', 64), 0, '{}', '{}')`;
    await db.pool.query(set);
    expect(await sqlState(db.pool.query(set))).toBe('23505');
    const decision = (key: string) =>
      db.pool.query(
        `INSERT INTO cutter_governance.review_decision (run_id, gate, key_id, key_name, document, signature, nonce, signed_utc, expires_utc)
         VALUES ('run-00000001', 'SG_1', $1, 'k', 'doc', 'sig', repeat('b', 32), now(), now() + interval '1 hour')`,
        [key],
      );
    await decision('0123456789abcdef');
    expect(await sqlState(decision('fedcba9876543210'))).toBe('23505');
  });
});
