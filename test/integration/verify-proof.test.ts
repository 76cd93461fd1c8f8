import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../shared/config.js';
import { ident } from '../../shared/db/pool.js';
import { dryRunChecks, liveRunChecks } from '../../shared/runs/checks.js';
import { markBaseline } from '../../shared/runs/writes.js';
import type { PhaseDeps } from '../../workers/context.js';
import { execFixture, type PlannedRun } from '../support/exec-fixture.js';
import { createTestDatabase, queryOnce, testDatabaseUrl, type TestDatabase } from '../support/db.js';
import { sha256 } from '../support/plan-fixtures.js';
import { waitFor } from '../support/poll.js';
import { makeKey, writeTrustedKeys } from '../support/sovereign.js';

/**
 * Verify's proof (docs/proof.md): since the run's baseline mark, its corpus
 * was written by the transaction that applied its plan, exactly as the plan
 * says, and by nothing else (a dry run: by nothing at all). A write by a role
 * without superuser rights is caught whenever it commits after the mark,
 * execute's own window included, and named by table and login; the negative
 * control shows what escapes: a superuser writing with triggers off.
 */

let db: TestDatabase;
let dir: string;
let deps: PhaseDeps;
let writer: pg.Pool;
const key = makeKey('sovereign-proof');
const role = `cutter_t_writer_${randomBytes(4).toString('hex')}`;
const { plannedRun, approve, execute } = execFixture(() => ({ db, dir, deps, key }));

beforeAll(async () => {
  db = await createTestDatabase('verifyproof');
  dir = mkdtempSync(join(tmpdir(), 'cutter-verifyproof-'));
  const cfg = parseConfig({ DATABASE_URL: db.url, SOVEREIGN_KEYS: writeTrustedKeys(join(dir, 'keys'), [key]), LOG_LEVEL: 'silent' });
  deps = { pool: db.pool, cfg, log: pino({ level: 'silent' }), redis: undefined as never, queues: undefined as never };
  // An application's login that edits the corpus: plain write grants, no superuser, not the tables' owner.
  await db.pool.query(`CREATE ROLE ${ident(role)} LOGIN NOSUPERUSER`);
  await db.pool.query(`GRANT USAGE ON SCHEMA cutter_governance TO ${ident(role)}`);
  await db.pool.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON public.information_unit, public.unit_version, public.iu_lifecycle_log TO ${ident(role)}`);
  await db.pool.query(`GRANT TRUNCATE ON public.iu_lifecycle_log TO ${ident(role)}`);
  await db.pool.query(`GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO ${ident(role)}`);
  const url = new URL(db.url);
  url.username = role;
  url.password = '';
  writer = new pg.Pool({ connectionString: url.toString(), max: 2 });
});
afterAll(async () => {
  await writer.end();
  await db.drop();
  await queryOnce(testDatabaseUrl('postgres'), `DROP ROLE IF EXISTS ${ident(role)}`);
  rmSync(dir, { recursive: true, force: true });
});

/** A run planned, its baseline mark taken (as precheck takes it), approved if live and executed. */
async function executed(mode: 'dry' | 'live'): Promise<PlannedRun> {
  const run = await plannedRun(mode);
  await markBaseline(db.pool, run.runId);
  if (mode === 'live') await approve(run.runId);
  const out = await execute(run.runId);
  expect(out.code, out.message).toBeUndefined();
  return run;
}

const failedLive = async (run: PlannedRun) => (await liveRunChecks(db.pool, { runId: run.runId })).filter((c) => !c.passed);
const failedDry = async (run: PlannedRun) => (await dryRunChecks(db.pool, { runId: run.runId, switchForRun: false })).filter((c) => !c.passed);
const names = (checks: { name: string }[]) => checks.map((c) => c.name);

describe('a live run', () => {
  it('passes when only its apply wrote its corpus, and that apply wrote exactly the plan', async () => {
    const run = await executed('live');
    const checks = await liveRunChecks(db.pool, { runId: run.runId });
    expect(checks.map((c) => [c.name, c.actual, c.passed])).toEqual([
      ["public.information_unit: no write since the baseline but the run's", [], true],
      ["public.unit_version: no write since the baseline but the run's", [], true],
      ["public.iu_lifecycle_log: no write since the baseline but the run's", [], true],
      // The fixture's plan: 1 create, 3 changed units, 3 new bodies, 4 log rows.
      ['public.information_unit: the run wrote what the plan says', { insert: 1, update: 3 }, true],
      ['public.unit_version: the run wrote what the plan says', { insert: 3 }, true],
      ['public.iu_lifecycle_log: the run wrote what the plan says', { insert: 4 }, true],
      ['every item postcondition holds', [], true],
      ['execution ledger row', 1, true],
      ['execution_enabled(run) off', false, true],
    ]);
  });

  it('fails on a unit outside the plan another role changed after the baseline, naming the table and the login', async () => {
    const run = await executed('live');
    await writer.query(`UPDATE public.information_unit SET state = 'retired' WHERE key = $1`, [run.k('d')]);
    const failed = await failedLive(run);
    expect(names(failed)).toEqual(["public.information_unit: no write since the baseline but the run's"]);
    expect(failed[0]?.actual).toEqual([{ op: 'update', rows: 1, statements: 1, roles: [role] }]);
  });

  it('fails on a version or a log row another role added, naming each table', async () => {
    const run = await executed('live');
    await writer.query(`INSERT INTO public.unit_version (unit_id, version, body, body_sha256) SELECT id, 2, 'd v2', $2 FROM public.information_unit WHERE key = $1`, [
      run.k('d'),
      sha256('d v2'),
    ]);
    await writer.query(`INSERT INTO public.iu_lifecycle_log (unit_id, from_state, to_state, version, actor) SELECT id, 'enacted', 'enacted', 1, 'someone' FROM public.information_unit WHERE key = $1`, [
      run.k('d'),
    ]);
    expect(names(await failedLive(run))).toEqual([
      "public.unit_version: no write since the baseline but the run's",
      "public.iu_lifecycle_log: no write since the baseline but the run's",
    ]);
  });

  it('fails on a write committed over another connection while execute runs', async () => {
    const run = await plannedRun('live');
    await markBaseline(db.pool, run.runId);
    await approve(run.runId);
    // A third session holds a unit of the plan, so execute's apply waits on its row lock.
    const holder = await db.pool.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT 1 FROM public.information_unit WHERE key = $1 FOR UPDATE', [run.k('a')]);
      const pending = execute(run.runId);
      await waitFor('execute to wait on the held row', async () => {
        const { rows } = await db.pool.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%apply_plan%'`,
        );
        return rows[0]?.n ? true : undefined;
      });
      // Meanwhile the writer changes a unit outside the plan and commits.
      await writer.query('UPDATE public.information_unit SET updated_at = now() WHERE key = $1', [run.k('d')]);
      await holder.query('ROLLBACK');
      const out = await pending;
      expect(out.code, out.message).toBeUndefined();
    } finally {
      holder.release();
    }
    const failed = await failedLive(run);
    expect(names(failed)).toEqual(["public.information_unit: no write since the baseline but the run's"]);
    expect(failed[0]?.actual).toEqual([{ op: 'update', rows: 1, statements: 1, roles: [role] }]);
  });

  it('fails on a change undone before verify: the record keeps that it was written', async () => {
    const run = await executed('live');
    await writer.query(`UPDATE public.information_unit SET state = 'retired' WHERE key = $1`, [run.k('d')]);
    await writer.query(`UPDATE public.information_unit SET state = 'enacted' WHERE key = $1`, [run.k('d')]);
    const failed = await failedLive(run);
    expect(failed[0]?.actual).toEqual([{ op: 'update', rows: 2, statements: 2, roles: [role] }]);
  });

  it('ignores writes committed before its baseline, and writes to other corpora (their runs prove them)', async () => {
    const run = await plannedRun('live');
    await writer.query('UPDATE public.information_unit SET updated_at = now() WHERE key = $1', [run.k('d')]);
    await markBaseline(db.pool, run.runId);
    await approve(run.runId);
    expect((await execute(run.runId)).code).toBeUndefined();
    const other = await plannedRun('live');
    await writer.query(`UPDATE public.information_unit SET state = 'retired' WHERE key = $1`, [other.k('d')]);
    expect(names(await failedLive(run))).toEqual([]);
  });

  it('cannot be cleared by the writer: it may not touch the record or the marks', async () => {
    const run = await executed('live');
    await writer.query(`UPDATE public.information_unit SET state = 'retired' WHERE key = $1`, [run.k('d')]);
    for (const sql of [
      'DELETE FROM cutter_governance.corpus_write',
      'UPDATE cutter_governance.run_write_mark SET mark = pg_current_snapshot()',
      'UPDATE cutter_governance.execution_ledger SET xact = pg_current_xact_id()',
    ]) {
      await expect(writer.query(sql), sql).rejects.toMatchObject({ code: '42501' });
    }
    expect(names(await failedLive(run))).toEqual(["public.information_unit: no write since the baseline but the run's"]);
  });

  it('negative control: a superuser writing with triggers off (session_replication_role) escapes the proof', async () => {
    const run = await executed('live');
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SET LOCAL session_replication_role = replica');
      const { rowCount } = await client.query(`UPDATE public.information_unit SET state = 'retired' WHERE key = $1`, [run.k('d')]);
      await client.query('COMMIT');
      expect(rowCount).toBe(1);
    } finally {
      client.release();
    }
    const { rows } = await db.pool.query<{ state: string }>('SELECT state FROM public.information_unit WHERE key = $1', [run.k('d')]);
    expect(rows[0]?.state).toBe('retired');
    expect(names(await failedLive(run))).toEqual([]);
  });
});

describe('a dry run', () => {
  it('passes when nothing wrote its corpus (its rehearsal was rolled back)', async () => {
    const run = await executed('dry');
    const checks = await dryRunChecks(db.pool, { runId: run.runId, switchForRun: false });
    expect(checks.map((c) => [c.name, c.passed])).toEqual([
      ['public.information_unit: no write since the baseline', true],
      ['public.unit_version: no write since the baseline', true],
      ['public.iu_lifecycle_log: no write since the baseline', true],
      ['execution_enabled(run) as before', true],
      ['no execution ledger row', true],
    ]);
  });

  it('fails on any write to its corpus, naming the table', async () => {
    const run = await executed('dry');
    await writer.query(`INSERT INTO public.iu_lifecycle_log (unit_id, from_state, to_state, version, actor) SELECT id, 'draft', 'draft', 1, 'someone' FROM public.information_unit WHERE key = $1`, [
      run.k('a'),
    ]);
    const failed = await failedDry(run);
    expect(names(failed)).toEqual(['public.iu_lifecycle_log: no write since the baseline']);
    expect(failed[0]?.actual).toEqual([{ op: 'insert', rows: 1, statements: 1, roles: [role] }]);
  });

  it('fails on a TRUNCATE of a corpus table, which counts against every corpus', async () => {
    const run = await executed('dry');
    await writer.query('TRUNCATE public.iu_lifecycle_log');
    const failed = await failedDry(run);
    expect(names(failed)).toEqual(['public.iu_lifecycle_log: no write since the baseline']);
    expect(failed[0]?.actual).toEqual([{ op: 'truncate', rows: null, statements: 1, roles: [role] }]);
  });
});
