import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PoolClient } from '../../shared/db/pool.js';
import { withExecRole } from '../../shared/grants/exec-role.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

// Only reads and transactions that roll back: the shared role cutter_exec is not changed.
const EXEC = 'cutter_exec';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase('grants_exec_role');
  await db.pool.query(
    `INSERT INTO public.information_unit (corpus, key, state, current_version) VALUES ('ICX-T', 'ICX-T/001', 'draft', 1)`,
  );
});
afterAll(async () => {
  await db.drop();
});

/** Runs fn in a transaction that is always rolled back, on one pooled connection. */
async function inRolledBackTransaction<T>(fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await db.pool.connect();
  try {
    await client.query('BEGIN');
    return await fn(client);
  } finally {
    await client.query('ROLLBACK');
    client.release();
  }
}

/** The SQLSTATE Postgres answers `sql` with when run as the exec role, or 'ok'. */
async function asExec(sql: string): Promise<string> {
  return inRolledBackTransaction(async (client) => {
    try {
      await withExecRole(client, EXEC, () => client.query(sql));
      return 'ok';
    } catch (err) {
      return String((err as { code?: unknown }).code);
    }
  });
}

const currentUser = async (client: PoolClient) => (await client.query<{ u: string }>('SELECT current_user::text AS u')).rows[0]?.u;

describe('withExecRole: execute runs as the exec role and Postgres enforces the matrix', () => {
  it('runs fn as the exec role inside the transaction and resets the role after', async () => {
    await inRolledBackTransaction(async (client) => {
      const inside = await withExecRole(client, EXEC, () => currentUser(client));
      expect(inside).toBe(EXEC);
      expect(await currentUser(client)).toBe('postgres');
    });
  });

  it('the exec role may ask whether the switch is on, and nothing else of any table', async () => {
    expect(await asExec(`SELECT cutter_governance.execution_enabled('any-run')`)).toBe('ok');
  });

  it.each([
    ['SELECT on information_unit', `SELECT count(*) FROM public.information_unit`],
    ['INSERT into information_unit', `INSERT INTO public.information_unit (corpus, key, state, current_version) VALUES ('ICX-T', 'ICX-T/002', 'draft', 1)`],
    ['UPDATE of information_unit', `UPDATE public.information_unit SET state = 'enacted' WHERE key = 'ICX-T/001'`],
    ['DELETE on information_unit', `DELETE FROM public.information_unit WHERE key = 'ICX-T/001'`],
    ['TRUNCATE of information_unit', 'TRUNCATE public.information_unit CASCADE'],
    ['TRUNCATE of iu_lifecycle_log', 'TRUNCATE public.iu_lifecycle_log'],
    ['CREATE TABLE in public', 'CREATE TABLE public.sneaky (id int)'],
    ['CREATE TABLE in cutter_governance', 'CREATE TABLE cutter_governance.sneaky (id int)'],
    ['ALTER TABLE information_unit', 'ALTER TABLE public.information_unit ADD COLUMN sneaky text'],
    ['DROP TABLE unit_version', 'DROP TABLE public.unit_version'],
    ['CREATE SCHEMA', 'CREATE SCHEMA sneaky'],
    ['UPDATE of the kill switch table', 'UPDATE cutter_governance.execution_switch SET enabled = true'],
  ])('%s is refused by Postgres (42501)', async (_name, sql) => {
    expect(await asExec(sql)).toBe('42501');
  });

  it('the refused DELETE changed nothing and the connection is back to the login after ROLLBACK', async () => {
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      await expect(withExecRole(client, EXEC, () => client.query(`DELETE FROM public.information_unit`))).rejects.toMatchObject({ code: '42501' });
      await client.query('ROLLBACK');
      expect(await currentUser(client)).toBe('postgres');
    } finally {
      client.release();
    }
    const { rows } = await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM public.information_unit WHERE corpus = 'ICX-T'`);
    expect(rows[0]?.n).toBe(1);
  });

  it('refuses to run outside BEGIN (SET LOCAL would silently do nothing there) and never calls fn', async () => {
    const client = await db.pool.connect();
    try {
      let called = false;
      await expect(
        withExecRole(client, EXEC, () => {
          called = true;
          return Promise.resolve();
        }),
      ).rejects.toMatchObject({ code: 'EXEC_ROLE_NO_TRANSACTION' });
      expect(called).toBe(false);
      expect(await currentUser(client)).toBe('postgres');
    } finally {
      client.release();
    }
  });

  it('names a role that does not exist (EXEC_ROLE_MISSING)', async () => {
    await inRolledBackTransaction(async (client) => {
      await expect(withExecRole(client, 'cutter_exec_never_created', () => Promise.resolve())).rejects.toMatchObject({
        code: 'EXEC_ROLE_MISSING',
      });
    });
  });
});
