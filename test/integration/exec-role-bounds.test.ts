import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PoolClient } from '../../shared/db/pool.js';
import { buildPlan } from '../../shared/plan/build.js';
import { claimPhase } from '../../shared/runs/store.js';
import { fingerprintCorpusTables } from '../support/corpus-tables.js';
import { stageSnapshot } from '../../shared/snapshot/stage.js';
import { requireTarget } from '../../shared/targets/registry.js';
import { createDemoDatabase, type TestDatabase } from '../support/db.js';
import { insertRunRow, insertTargetRow, ndjson, recordBackupTaken, scratchDir, seedUnits } from '../support/plan-fixtures.js';

/**
 * The kill switch, exactly-once and the audit chain, held by PostgreSQL
 * against anyone with the exec role's rights (the insider of issue "The
 * database holds the line"): the role holds no write grant on any table, and
 * writes the corpus only through cutter_governance.apply_plan, which applies
 * the frozen plan of a run at execute whose switch is on for exactly that
 * run, once. Every attempt is made as `SET ROLE cutter_exec`, as an insider
 * would, and must change nothing.
 */

const EXEC = 'cutter_exec';
let db: TestDatabase;
const files = scratchDir('execbounds');
let runs = 0;

beforeAll(async () => {
  db = await createDemoDatabase('execbounds', 'test');
});
afterAll(async () => {
  await db.drop();
  files.cleanup();
});

/** A run of its own corpus (two drafts, a snapshot that enacts one and adds one), planned and claimed at execute. */
async function runAtExecute(mode: 'live' | 'dry'): Promise<{ runId: string; corpus: string }> {
  runs += 1;
  const corpus = `XB${runs}`;
  await seedUnits(db.pool, corpus, [
    { key: `${corpus}/a`, state: 'draft', body: 'a' },
    { key: `${corpus}/b`, state: 'draft', body: 'b' },
  ]);
  await insertTargetRow(db.pool, { name: `xb${runs}`, corpus });
  const runId = `run-xbounds-${String(runs).padStart(4, '0')}`;
  await insertRunRow(db.pool, { runId, target: `xb${runs}`, corpus, mode });
  const path = files.write(`${runId}.ndjson`, ndjson([{ key: `${corpus}/a`, state: 'enacted', body: 'a' }, { key: `${corpus}/n`, state: 'draft', body: 'n' }]));
  await stageSnapshot(db.pool, { runId, corpus, path });
  const target = await requireTarget(db.pool, `xb${runs}`);
  const client = await db.pool.connect();
  try {
    await buildPlan(client, { runId, target });
  } finally {
    client.release();
  }
  await recordBackupTaken(db.pool, runId);
  expect((await claimPhase(db.pool, runId, 'execute'))?.started).toBe(true);
  return { runId, corpus };
}

async function switchOnFor(runId: string): Promise<void> {
  await db.pool.query(`UPDATE cutter_governance.execution_switch SET enabled = true, run_id = $1, expires_at = now() + interval '1 hour', changed_by = 'test'`, [runId]);
}

async function switchOff(): Promise<void> {
  await db.pool.query(`UPDATE cutter_governance.execution_switch SET enabled = false, run_id = NULL, expires_at = NULL, changed_by = 'test'`);
}

/** Runs sql as the exec role in a transaction that is then committed (if it got that far); resolves with the SQLSTATE, or null. */
async function asExec(sql: string, params: unknown[] = []): Promise<string | null> {
  const client: PoolClient = await db.pool.connect();
  try {
    await client.query('BEGIN');
    await client.query(`SET LOCAL ROLE ${EXEC}`);
    await client.query(sql, params);
    await client.query('COMMIT');
    return null;
  } catch (err) {
    await client.query('ROLLBACK');
    return (err as { code?: string }).code ?? 'UNKNOWN';
  } finally {
    client.release();
  }
}

async function state() {
  const { rows } = await db.pool.query<{ ledger: number; audit: number; sets: string }>(
    `SELECT (SELECT count(*)::int FROM cutter_governance.execution_ledger) AS ledger,
            (SELECT count(*)::int FROM cutter_governance.audit_event) AS audit,
            (SELECT string_agg(run_id || ':' || status || ':' || unit_count, ',' ORDER BY run_id) FROM cutter_governance.cut_change_set) AS sets`,
  );
  return { corpus: await fingerprintCorpusTables(db.pool), ...rows[0] };
}

const PERMISSION_DENIED = '42501';

describe('the exec role, with the switch off or on for another run', () => {
  it('may not write the corpus, the ledger, the audit chain or a change set directly: PostgreSQL refuses each', async () => {
    const other = await runAtExecute('live');
    const before = await state();
    for (const on of [null, other.runId]) {
      if (on) await switchOnFor(on);
      else await switchOff();
      const attempts: [string, string, unknown[]][] = [
        ['enact every work draft', `UPDATE public.information_unit SET state = 'enacted' WHERE corpus = 'ICX-WORK'`, []],
        ['insert into the protected corpus', `INSERT INTO public.information_unit (corpus, key, state, current_version) VALUES ('ICX-CONST', 'ICX-CONST/999', 'enacted', 1)`, []],
        ['a version row', `INSERT INTO public.unit_version (unit_id, version, body, body_sha256, created_by_run) SELECT id, 2, 'x', encode(sha256('x'), 'hex'), $1 FROM public.information_unit LIMIT 1`, [other.runId]],
        ['a lifecycle row naming another run', `INSERT INTO public.iu_lifecycle_log (unit_id, from_state, to_state, version, run_id, actor) SELECT id, 'draft', 'enacted', 1, $1, 'x' FROM public.information_unit LIMIT 1`, [other.runId]],
        ['a ledger row', `INSERT INTO cutter_governance.execution_ledger (run_id, plan_sha256, unit_count) VALUES ($1, repeat('a', 64), 1)`, [other.runId]],
        ['a forged gate.released', `INSERT INTO cutter_governance.audit_event (seq, at, actor, kind, run_id, detail, prev_hash, hash) VALUES (0, now(), 'x', 'gate.released', $1, '{}', repeat('0', 64), repeat('0', 64))`, [other.runId]],
        ['an audit row through the application function', `SELECT cutter_governance.append_audit('x', 'run.verified', $1, '{}')`, [other.runId]],
        ['the counts the sovereign is shown', `UPDATE cutter_governance.cut_change_set SET unit_count = 0 WHERE run_id = $1`, [other.runId]],
        ['the switch', `UPDATE cutter_governance.execution_switch SET enabled = true, run_id = $1, expires_at = now() + interval '1 hour'`, [other.runId]],
        ['turning another run off', `SELECT cutter_governance.disarm_execution($1, 'x')`, [other.runId]],
      ];
      for (const [what, sql, params] of attempts) expect(await asExec(sql, params), `${what} (switch ${on ? 'on for another run' : 'off'})`).toBe(PERMISSION_DENIED);
    }
    expect(await state()).toEqual(before);
  });

  it('may not apply a run whose switch is off, or on for another run; nor a run that is not at execute', async () => {
    const mine = await runAtExecute('live');
    const other = await runAtExecute('live');
    const before = await state();
    await switchOff();
    expect(await asExec('SELECT cutter_governance.apply_plan($1, $2)', [mine.runId, 'insider'])).toBe('CX003');
    await switchOnFor(other.runId);
    expect(await asExec('SELECT cutter_governance.apply_plan($1, $2)', [mine.runId, 'insider'])).toBe('CX003');
    await db.pool.query(`UPDATE cutter_governance.run SET phase = 'backup' WHERE run_id = $1`, [other.runId]);
    expect(await asExec('SELECT cutter_governance.apply_plan($1, $2)', [other.runId, 'insider'])).toBe('CX001');
    expect(await state()).toEqual(before);
    await switchOff();
  });
});

describe('apply_plan', () => {
  it('applies exactly the run’s own plan once, with its id on every lifecycle row, turns the switch off, and refuses a second time', async () => {
    const { runId, corpus } = await runAtExecute('live');
    await switchOnFor(runId);
    expect(await asExec('SELECT cutter_governance.apply_plan($1, $2)', [runId, 'cutter:test'])).toBeNull();
    const { rows } = await db.pool.query<{ key: string; state: string; run_id: string }>(
      `SELECT u.key, u.state, l.run_id FROM public.iu_lifecycle_log l JOIN public.information_unit u ON u.id = l.unit_id
        WHERE u.corpus = $1 AND l.run_id IS NOT NULL ORDER BY u.key`,
      [corpus],
    );
    expect(rows).toEqual([
      { key: `${corpus}/a`, state: 'enacted', run_id: runId },
      { key: `${corpus}/n`, state: 'draft', run_id: runId },
    ]);
    const after = await db.pool.query<{ on: boolean; ledger: number; applied: number }>(
      `SELECT cutter_governance.execution_enabled() AS on,
              (SELECT count(*)::int FROM cutter_governance.execution_ledger WHERE run_id = $1) AS ledger,
              (SELECT count(*)::int FROM cutter_governance.audit_event WHERE run_id = $1 AND kind = 'execute.applied') AS applied`,
      [runId],
    );
    expect(after.rows[0]).toEqual({ on: false, ledger: 1, applied: 1 });
    // Even with the switch turned on again for it, a second application is refused.
    await switchOnFor(runId);
    const before = await state();
    expect(await asExec('SELECT cutter_governance.apply_plan($1, $2)', [runId, 'cutter:test'])).toBe('CX002');
    expect(await state()).toEqual(before);
    await switchOff();
  });

  it('applies nothing for a run without a completed, verified backup, even at execute with its switch on', async () => {
    const { runId } = await runAtExecute('live');
    await db.pool.query(`UPDATE cutter_governance.run_phase SET state = 'failed' WHERE run_id = $1 AND phase = 'backup'`, [runId]);
    await switchOnFor(runId);
    const before = await state();
    expect(await asExec('SELECT cutter_governance.apply_plan($1, $2)', [runId, 'insider'])).toBe('CX007');
    expect(await state()).toEqual(before);
    await switchOff();
  });

  it('never keeps a dry run: the rehearsal raises, so a commit after it changes nothing', async () => {
    const { runId } = await runAtExecute('dry');
    const before = await state();
    expect(await asExec('SELECT cutter_governance.apply_plan($1, $2)', [runId, 'insider'])).toBe('CX000');
    expect(await state()).toEqual(before);
  });

  it('the application may append its own audit events, never those the database functions own', async () => {
    await expect(db.pool.query(`SELECT cutter_governance.append_audit('x', 'gate.released', NULL, '{}')`)).rejects.toMatchObject({ code: 'CA001' });
    await expect(db.pool.query(`SELECT cutter_governance.append_audit('x', 'execute.applied', NULL, '{}')`)).rejects.toMatchObject({ code: 'CA001' });
    await expect(db.pool.query(`SELECT cutter_governance.append_audit('x', 'run.note', NULL, '{}')`)).resolves.toBeTruthy();
  });
});
