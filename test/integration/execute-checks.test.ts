import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../shared/config.js';
import { findPostconditionFailures } from '../../shared/execute/postconditions.js';
import { buildPlan } from '../../shared/plan/build.js';
import { recomputePlanSha256 } from '../../shared/plan/hash.js';
import { claimPhase } from '../../shared/runs/store.js';
import { liveRunChecks } from '../../shared/runs/checks.js';
import type { CorpusFingerprint } from '../../shared/jobs/results.js';
import { fingerprintCorpus, fingerprintOutsideRun } from '../../shared/runs/fingerprint.js';
import { stageSnapshot } from '../../shared/snapshot/stage.js';
import { getTarget } from '../../shared/targets/registry.js';
import type { PhaseDeps } from '../../workers/context.js';
import { executeWorker } from '../../workers/execute/process.js';
import { fingerprintCorpusTables } from '../support/corpus-tables.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { insertRunRow, insertTargetRow, ndjson, recordBackupTaken, seedUnits, sha256, type UnitSpec } from '../support/plan-fixtures.js';
import { waitFor } from '../support/poll.js';
import { insertConsumedApprovals, makeKey, writeTrustedKeys } from '../support/sovereign.js';

/**
 * Execute's guarantees, one by one, against the single apply statement
 * (shared/db/functions/apply_plan.sql): every kind of drift fails EXECUTE_DRIFT naming
 * the unit, a tampered plan is refused, an unprovable postcondition fails
 * EXECUTE_POSTCONDITION, and in each case nothing is applied; a unit changed
 * by a transaction execute has to wait for is checked after the wait.
 */

let db: TestDatabase;
let dir: string;
const key = makeKey('sovereign-exec');
let deps: PhaseDeps;
let runs = 0;

beforeAll(async () => {
  db = await createTestDatabase('execchecks');
  dir = mkdtempSync(join(tmpdir(), 'cutter-execchecks-'));
  const cfg = parseConfig({ DATABASE_URL: db.url, SOVEREIGN_KEYS: writeTrustedKeys(join(dir, 'keys'), [key]), LOG_LEVEL: 'silent' });
  // Execute uses Postgres alone; the queue handles are never touched.
  deps = { pool: db.pool, cfg, log: pino({ level: 'silent' }), redis: undefined as never, queues: undefined as never };
});
afterAll(async () => {
  await db.drop();
  rmSync(dir, { recursive: true, force: true });
});

/** Four units and a snapshot that makes every op: transition, revise, revise+transition, create. */
const UNITS: UnitSpec[] = [
  { key: 'a', state: 'draft', body: 'a v1' },
  { key: 'b', state: 'draft', body: 'b v1' },
  { key: 'c', state: 'draft', body: 'c v1', version: 2 },
  { key: 'd', state: 'enacted', body: 'd v1' },
];
const SNAPSHOT = [
  { key: 'a', state: 'enacted', body: 'a v1' },
  { key: 'b', state: 'draft', body: 'b v2' },
  { key: 'c', state: 'enacted', body: 'c v3' },
  { key: 'd', state: 'enacted', body: 'd v1' },
  { key: 'n', state: 'draft', body: 'n v1' },
];

/** A corpus of its own with the units above, planned for a run that is running. */
async function plannedRun(mode: 'dry' | 'live'): Promise<{ runId: string; corpus: string; k: (s: string) => string }> {
  runs += 1;
  const corpus = `EX${runs}`;
  const k = (s: string) => `${corpus}/${s}`;
  await seedUnits(db.pool, corpus, UNITS.map((u) => ({ ...u, key: k(u.key) })));
  await insertTargetRow(db.pool, { name: `ex${runs}`, corpus });
  const runId = `run-exec-${String(runs).padStart(4, '0')}`;
  await insertRunRow(db.pool, { runId, target: `ex${runs}`, corpus, mode });
  const path = join(dir, `${runId}.ndjson`);
  writeFileSync(path, ndjson(SNAPSHOT.map((r) => ({ ...r, key: k(r.key) }))));
  await stageSnapshot(db.pool, { runId, corpus, path });
  const target = await getTarget(db.pool, `ex${runs}`);
  if (!target) throw new Error('no target');
  const client = await db.pool.connect();
  try {
    await buildPlan(client, { runId, target });
  } finally {
    client.release();
  }
  return { runId, corpus, k };
}

/** What a gate that opened leaves behind: consumed approvals of the frozen hash, the switch on for the run. */
async function approve(runId: string): Promise<void> {
  await insertConsumedApprovals(db.pool, runId, key);
  await db.pool.query(
    `UPDATE cutter_governance.execution_switch SET enabled = true, run_id = $1, expires_at = now() + interval '1 hour', changed_by = 'test'`,
    [runId],
  );
}

/** Claims execute for the run and runs its processor, as a worker would; resolves with its result or its error code and message. */
async function execute(runId: string): Promise<{ result?: Record<string, unknown>; code?: string; message?: string }> {
  await recordBackupTaken(db.pool, runId);
  const run = (await claimPhase(db.pool, runId, 'execute'))?.run;
  if (!run) throw new Error(`no run ${runId}`);
  try {
    return { result: await executeWorker.process({ run, reads: null, job: {} as never, progress: () => Promise.resolve() }, deps) };
  } catch (err) {
    return { code: (err as { code?: string }).code ?? 'INTERNAL', message: (err as Error).message };
  }
}

/** Re-freezes the plan's hash after its items were edited, as a faulty planner would have frozen it (approve afterwards). */
async function refreeze(runId: string): Promise<void> {
  const client = await db.pool.connect();
  try {
    const sha = await recomputePlanSha256(client, runId);
    await client.query('UPDATE cutter_governance.cut_change_set SET plan_sha256 = $2 WHERE run_id = $1', [runId, sha]);
  } finally {
    client.release();
  }
}

const ledger = async (runId: string) =>
  (await db.pool.query('SELECT 1 FROM cutter_governance.execution_ledger WHERE run_id = $1', [runId])).rowCount;

describe('execute, live', () => {
  it('applies every op exactly as planned, and every postcondition holds afterwards', async () => {
    const { runId } = await plannedRun('live');
    await approve(runId);
    const out = await execute(runId);
    expect(out.code, out.message).toBeUndefined();
    expect(out.result).toMatchObject({ applied: true, units_created: 1, units_updated: 3, versions_written: 3, log_rows: 4 });
    expect(await findPostconditionFailures(db.pool, runId)).toEqual([]);
    expect(await ledger(runId)).toBe(1);
  });

  // Each drift, made after the plan: the change, and the key execute must name.
  const drifts: [string, (k: (s: string) => string, corpus: string) => Promise<unknown>, string][] = [
    ['a changed state', (k) => db.pool.query(`UPDATE information_unit SET state = 'retired' WHERE key = $1`, [k('a')]), 'a'],
    [
      'a new current version',
      async (k) => {
        const { rows } = await db.pool.query<{ id: number }>('UPDATE information_unit SET current_version = 2 WHERE key = $1 RETURNING id', [k('b')]);
        await db.pool.query('INSERT INTO unit_version (unit_id, version, body, body_sha256) VALUES ($1, 2, $2, $3)', [rows[0]?.id, 'b v1', sha256('b v1')]);
      },
      'b',
    ],
    [
      'a body rewritten in place',
      (k) =>
        db.pool.query(
          `UPDATE unit_version v SET body = 'c other', body_sha256 = $2 FROM information_unit u WHERE u.key = $1 AND v.unit_id = u.id AND v.version = u.current_version`,
          [k('c'), sha256('c other')],
        ),
      'c',
    ],
    ['a unit to create that now exists', (k, corpus) => seedUnits(db.pool, corpus, [{ key: k('n'), state: 'draft', body: 'n v1' }]), 'n'],
    ['a unit renamed away', (k) => db.pool.query(`UPDATE information_unit SET key = $2 WHERE key = $1`, [k('a'), k('a2')]), 'a'],
  ];
  for (const [what, drift, named] of drifts) {
    it(`with ${what} fails EXECUTE_DRIFT naming only that unit, and applies nothing`, async () => {
      const { runId, k, corpus } = await plannedRun('live');
      await approve(runId);
      await drift(k, corpus);
      const before = await fingerprintCorpusTables(db.pool);
      const out = await execute(runId);
      expect(out.code, out.message).toBe('EXECUTE_DRIFT');
      expect(out.message).toContain(`drifted keys: ${k(named)};`);
      expect(await fingerprintCorpusTables(db.pool)).toEqual(before);
      expect(await ledger(runId)).toBe(0);
    });
  }

  it('refuses a plan whose items changed after the hash was frozen, and applies nothing', async () => {
    const { runId, k } = await plannedRun('live');
    await approve(runId);
    await db.pool.query(`UPDATE cutter_governance.cut_change_item SET post_state = 'retired' WHERE run_id = $1 AND key = $2`, [runId, k('a')]);
    const before = await fingerprintCorpusTables(db.pool);
    const out = await execute(runId);
    expect(out.code, out.message).toBe('PLAN_TAMPERED');
    expect(await fingerprintCorpusTables(db.pool)).toEqual(before);
  });

  it('fails EXECUTE_POSTCONDITION for an item whose result cannot hold (no body, yet a new version), and applies nothing', async () => {
    const { runId, k } = await plannedRun('live');
    await db.pool.query('UPDATE cutter_governance.cut_change_item SET post_version = 2 WHERE run_id = $1 AND key = $2', [runId, k('a')]);
    await refreeze(runId);
    await approve(runId);
    const before = await fingerprintCorpusTables(db.pool);
    const out = await execute(runId);
    expect(out.code, out.message).toBe('EXECUTE_POSTCONDITION');
    expect(out.message).toContain(k('a'));
    expect(await fingerprintCorpusTables(db.pool)).toEqual(before);
    expect(await ledger(runId)).toBe(0);
  });

  it('refuses a transition only a revert may take in the plan of a run that is no revert, written past the insert trigger, and applies nothing', async () => {
    const { runId, k } = await plannedRun('live');
    // The trigger cut_change_item_revert checks items as they are inserted; an owner's UPDATE goes past it.
    await db.pool.query(`UPDATE cutter_governance.cut_change_item SET transition = 'enacted->draft' WHERE run_id = $1 AND key = $2`, [runId, k('a')]);
    await refreeze(runId);
    await approve(runId);
    const before = await fingerprintCorpusTables(db.pool);
    // Execute refuses it first (no target may allow it), and apply_plan itself for any other caller.
    const out = await execute(runId);
    expect(out.code, out.message).toBe('ALLOWANCE_EXCEEDED');
    expect(out.message).toContain('enacted->draft');
    // Execute turned the switch off as it failed; armed again for the direct call.
    await db.pool.query(`UPDATE cutter_governance.execution_switch SET enabled = true, run_id = $1, expires_at = now() + interval '1 hour', changed_by = 'test'`, [runId]);
    await expect(db.pool.query(`SELECT cutter_governance.apply_plan($1, 'test')`, [runId])).rejects.toMatchObject({ code: 'CX008' });
    expect(await fingerprintCorpusTables(db.pool)).toEqual(before);
    expect(await ledger(runId)).toBe(0);
  });

  it('fails EXECUTE_POSTCONDITION when a trigger changes the units after the apply, and applies nothing', async () => {
    const { runId, k } = await plannedRun('live');
    await approve(runId);
    // After every log row, the unit goes back to draft: only the full check can see it.
    await db.pool.query(`CREATE FUNCTION public.test_undo() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN UPDATE public.information_unit SET state = 'draft' WHERE id = NEW.unit_id AND key = '${k('a')}'; RETURN NULL; END $$`);
    await db.pool.query('CREATE TRIGGER test_undo AFTER INSERT ON public.iu_lifecycle_log FOR EACH ROW EXECUTE FUNCTION public.test_undo()');
    try {
      const before = await fingerprintCorpusTables(db.pool);
      const out = await execute(runId);
      expect(out.code, out.message).toBe('EXECUTE_POSTCONDITION');
      expect(out.message).toContain(k('a'));
      expect(await fingerprintCorpusTables(db.pool)).toEqual(before);
    } finally {
      await db.pool.query('DROP TRIGGER test_undo ON public.iu_lifecycle_log');
      await db.pool.query('DROP FUNCTION public.test_undo()');
    }
  });
});

describe('execute racing another writer', () => {
  /** Holds an open transaction that changed a planned unit; execute must wait for it, then see its change. */
  async function race(change: (k: (s: string) => string, corpus: string) => [string, unknown[]], named: string): Promise<void> {
    const { runId, k, corpus } = await plannedRun('live');
    await approve(runId);
    const writer = await db.pool.connect();
    try {
      await writer.query('BEGIN');
      await writer.query(...change(k, corpus));
      const pending = execute(runId);
      await waitFor('execute to wait for the writer', async () => {
        const { rows } = await db.pool.query(
          `SELECT 1 FROM pg_stat_activity
            WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%cutter_governance.apply_plan(%'`,
        );
        return rows.length ? true : undefined;
      }, { deadlineMs: 20_000, stepMs: 20 });
      await writer.query('COMMIT');
      const before = await fingerprintCorpusTables(db.pool);
      const out = await pending;
      expect(out.code, out.message).toBe('EXECUTE_DRIFT');
      expect(out.message).toContain(`drifted keys: ${k(named)};`);
      expect(await fingerprintCorpusTables(db.pool)).toEqual(before);
    } finally {
      await writer.query('ROLLBACK').catch(() => undefined);
      writer.release();
    }
  }

  it('re-checks a unit changed while execute waited for its row lock', async () => {
    await race((k) => [`UPDATE information_unit SET state = 'retired' WHERE key = $1`, [k('a')]], 'a');
  });

  it('sees a unit to create that another transaction inserted while execute waited', async () => {
    await race((k, corpus) => [`INSERT INTO information_unit (corpus, key, state, current_version) VALUES ($1, $2, 'draft', 1)`, [corpus, k('n')]], 'n');
  });
});

describe('execute, dry', () => {
  it('rehearses the same statement, reports what it would write, and rolls back', async () => {
    const { runId } = await plannedRun('dry');
    const before = await fingerprintCorpusTables(db.pool);
    const out = await execute(runId);
    expect(out.result).toMatchObject({ mode: 'dry', rolled_back: true, units_created: 1, units_updated: 3, versions_written: 3, log_rows: 4 });
    expect(await fingerprintCorpusTables(db.pool)).toEqual(before);
    expect(await ledger(runId)).toBe(0);
  });

  it('fails on drift as a live run would', async () => {
    const { runId, k } = await plannedRun('dry');
    await db.pool.query(`UPDATE information_unit SET state = 'enacted' WHERE key = $1`, [k('b')]);
    const out = await execute(runId);
    expect(out.code, out.message).toBe('EXECUTE_DRIFT');
    expect(out.message).toContain(`drifted keys: ${k('b')};`);
  });
});

describe('verify after a live apply', () => {
  /** A run planned, with the baseline and outside-the-plan fingerprint its precheck and cutplan take, then applied. */
  async function applied(): Promise<{ runId: string; corpus: string; k: (s: string) => string; baseline: CorpusFingerprint[]; outsideAtPlan: CorpusFingerprint[] }> {
    const { runId, corpus, k } = await plannedRun('live');
    const baseline = await fingerprintCorpus(db.pool, corpus);
    const outsideAtPlan = await fingerprintOutsideRun(db.pool, runId, corpus);
    await approve(runId);
    const out = await execute(runId);
    expect(out.code, out.message).toBeUndefined();
    return { runId, corpus, k, baseline, outsideAtPlan };
  }
  const failed = async (run: Awaited<ReturnType<typeof applied>>) =>
    (await liveRunChecks(db.pool, run)).filter((c) => !c.passed).map((c) => c.name);

  it('passes every check when the corpus is the baseline plus exactly the plan', async () => {
    const run = await applied();
    const checks = await liveRunChecks(db.pool, run);
    expect(checks.map((c) => [c.name, c.passed])).toEqual([
      ['public.information_unit rows = baseline + plan', true],
      ['public.unit_version rows = baseline + plan', true],
      ['public.iu_lifecycle_log rows = baseline + plan', true],
      ['public.information_unit outside the plan unchanged', true],
      ['public.unit_version outside the plan unchanged', true],
      ['public.iu_lifecycle_log outside the plan unchanged', true],
      ['every item postcondition holds', true],
      ['execution ledger row', true],
      ['execution_enabled(run) off', true],
    ]);
    // The counts it compares are the corpus's own (baseline + 1 create, 3 versions, 4 log rows).
    const rows = (await fingerprintCorpus(db.pool, run.corpus)).map((t) => t.rows);
    expect(checks.slice(0, 3).map((c) => c.actual)).toEqual(rows);
    expect(rows).toEqual(run.baseline.map((t, i) => t.rows + [1, 3, 4][i]!));
  });

  it('fails on a unit the plan left alone that changed afterwards', async () => {
    const run = await applied();
    await db.pool.query(`UPDATE information_unit SET state = 'retired' WHERE key = $1`, [run.k('d')]);
    expect(await failed(run)).toEqual(['public.information_unit outside the plan unchanged']);
  });

  it('fails on a version the plan did not write, both its count and the fingerprint outside the plan', async () => {
    const run = await applied();
    await db.pool.query(`INSERT INTO unit_version (unit_id, version, body, body_sha256) SELECT id, 2, 'd v2', $2 FROM information_unit WHERE key = $1`, [
      run.k('d'),
      sha256('d v2'),
    ]);
    expect(await failed(run)).toEqual(['public.unit_version rows = baseline + plan', 'public.unit_version outside the plan unchanged']);
  });

  it('ignores writes to other corpora (their runs prove them)', async () => {
    const run = await applied();
    const other = await plannedRun('live');
    await db.pool.query(`UPDATE information_unit SET state = 'retired' WHERE key = $1`, [other.k('d')]);
    await db.pool.query(`INSERT INTO unit_version (unit_id, version, body, body_sha256) SELECT id, 2, 'a v2', $2 FROM information_unit WHERE key = $1`, [
      other.k('a'),
      sha256('a v2'),
    ]);
    await db.pool.query(`INSERT INTO iu_lifecycle_log (unit_id, from_state, to_state, version, actor) SELECT id, 'draft', 'enacted', 1, 'someone' FROM information_unit WHERE key = $1`, [
      other.k('b'),
    ]);
    expect(await failed(run)).toEqual([]);
  });
});
