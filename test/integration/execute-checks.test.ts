import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../shared/config.js';
import { findPostconditionFailures } from '../../shared/execute/postconditions.js';
import { recomputePlanSha256 } from '../../shared/plan/hash.js';
import type { PhaseDeps } from '../../workers/context.js';
import { fingerprintCorpusTables } from '../support/corpus-tables.js';
import { execFixture } from '../support/exec-fixture.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { seedUnits, sha256 } from '../support/plan-fixtures.js';
import { waitFor } from '../support/poll.js';
import { makeKey, writeTrustedKeys } from '../support/sovereign.js';

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

const { plannedRun, approve, execute } = execFixture(() => ({ db, dir, deps, key }));

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
