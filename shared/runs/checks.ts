import type { Pool, PoolClient } from '../db/pool.js';
import { CutterError } from '../errors.js';
import { findPostconditionFailures } from '../execute/postconditions.js';
import { check as checkSchema, type Check } from '../jobs/results.js';
import { revertChecks } from './revert-checks.js';
import { runBaseline, type RunRow } from './store.js';
import { CORPUS_TABLES, writesSinceBaseline, type CorpusTable, type WriteTally } from './writes.js';

const check = (name: string, expected: unknown, actual: unknown): Check => ({
  name,
  expected,
  actual,
  passed: JSON.stringify(expected) === JSON.stringify(actual),
});

/** Writes to one table, as a check shows them (the table is in the check's name). */
const shown = (writes: WriteTally[], table: CorpusTable): Omit<WriteTally, 'table'>[] =>
  writes.filter((w) => w.table === table).map(({ table: _, ...w }) => w);

/** Rows written per kind of write, in a fixed order (insert, update, delete, truncate), kinds with none left out. */
function byOp(entries: [WriteTally['op'], number | null][]): Partial<Record<WriteTally['op'], number | null>> {
  const out: Partial<Record<WriteTally['op'], number | null>> = {};
  for (const op of ['insert', 'update', 'delete', 'truncate'] as const) {
    const found = entries.filter(([o]) => o === op);
    if (!found.length) continue;
    const rows = found.map(([, n]) => n);
    const sum = rows.reduce<number | null>((a, n) => (a === null || n === null ? null : a + n), 0);
    if (sum !== 0) out[op] = sum;
  }
  return out;
}

/**
 * Dry run: nothing wrote the run's corpus since its baseline (the database's
 * record of writes, docs/proof.md), the kill switch is for this run what it
 * was, and nothing was applied.
 */
export async function dryRunChecks(pool: Pool, args: { runId: string; switchForRun: boolean }): Promise<Check[]> {
  const { runId } = args;
  const { own, others } = await writesSinceBaseline(pool, runId);
  const all = [...own, ...others];
  const checks = CORPUS_TABLES.map((table) => check(`${table}: no write since the baseline`, [], shown(all, table)));
  checks.push(check('execution_enabled(run) as before', args.switchForRun, await switchOn(pool, runId)));
  checks.push(check('no execution ledger row', 0, await ledgerRows(pool, runId)));
  return checks;
}

/**
 * Live run: since its baseline the run's corpus was written by the
 * transaction that applied its plan and by nothing else, that transaction
 * wrote exactly the rows the plan says, every item's postcondition holds,
 * the ledger has the run once and the kill switch is off for the run. Other
 * corpora and other runs' switch are not this run's proof: live runs on
 * other corpora may overlap it.
 */
export async function liveRunChecks(pool: Pool, args: { runId: string }): Promise<Check[]> {
  const { runId } = args;
  // Independent reads, side by side (each on its own connection of the pool).
  const [writes, expected, postconditionFailures] = await Promise.all([
    writesSinceBaseline(pool, runId),
    planWrites(pool, runId),
    findPostconditionFailures(pool, runId),
  ]);
  const checks: Check[] = [];
  for (const table of CORPUS_TABLES) {
    checks.push(check(`${table}: no write since the baseline but the run's`, [], shown(writes.others, table)));
  }
  for (const table of CORPUS_TABLES) {
    const own = writes.own.filter((w) => w.table === table).map((w): [WriteTally['op'], number | null] => [w.op, w.rows]);
    checks.push(check(`${table}: the run wrote what the plan says`, expected[table], byOp(own)));
  }
  checks.push(check('every item postcondition holds', [], postconditionFailures));
  checks.push(check('execution ledger row', 1, await ledgerRows(pool, runId)));
  checks.push(check('execution_enabled(run) off', false, await switchOn(pool, runId)));
  return checks;
}

/**
 * The rows applying the plan writes, per table: a unit per create, an update
 * of each other unit, a version per new body, a log row per item.
 */
async function planWrites(pool: Pool, runId: string): Promise<Record<CorpusTable, Partial<Record<WriteTally['op'], number | null>>>> {
  const { rows } = await pool.query<{ creates: number; bodies: number; items: number }>(
    `SELECT count(*) FILTER (WHERE op = 'create')::int AS creates,
            count(*) FILTER (WHERE post_body IS NOT NULL)::int AS bodies,
            count(*)::int AS items
       FROM cutter_governance.cut_change_item WHERE run_id = $1`,
    [runId],
  );
  const r = rows[0] ?? { creates: 0, bodies: 0, items: 0 };
  return {
    'public.information_unit': byOp([['insert', r.creates], ['update', r.items - r.creates]]),
    'public.unit_version': byOp([['insert', r.bodies]]),
    'public.iu_lifecycle_log': byOp([['insert', r.items]]),
  };
}

/**
 * The verification table of a run (verify, and the demo seed's replay): the
 * dry or live checks against its baseline, and a revert's own.
 */
export async function runChecks(pool: Pool, run: RunRow): Promise<Check[]> {
  const baseline = runBaseline(run);
  if (!baseline) throw new CutterError('BASELINE_MISSING', `run ${run.run_id} has no precheck baseline to verify against`);
  if (baseline.corpus !== run.corpus) {
    throw new CutterError('BASELINE_SCOPE', `run ${run.run_id}: the baseline covers corpus ${baseline.corpus}, the run corpus ${run.corpus}`);
  }
  if (run.mode === 'dry') return dryRunChecks(pool, { runId: run.run_id, switchForRun: baseline.execution_enabled_for_run });
  // A revert also proves that what it reverted is as it was before the run it reverts (read side by side).
  const [live, revert] = await Promise.all([
    liveRunChecks(pool, { runId: run.run_id }),
    run.revert_of === null ? [] : revertChecks(pool, { runId: run.run_id, revertOf: run.revert_of }),
  ]);
  return [...live, ...revert];
}

/** The switch for this run: another live run's grant may turn it on for that run meanwhile. */
async function switchOn(pool: Pool, runId: string): Promise<boolean> {
  const { rows } = await pool.query<{ on: boolean }>('SELECT cutter_governance.execution_enabled($1) AS on', [runId]);
  return rows[0]?.on ?? true;
}

async function ledgerRows(pool: Pool, runId: string): Promise<number> {
  const { rows } = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM cutter_governance.execution_ledger WHERE run_id = $1', [runId]);
  return rows[0]?.n ?? -1;
}

/** Stores a run's verification table (verify_result), each check through its schema. */
export async function saveVerifyResult(pool: Pool, runId: string, checks: Check[]): Promise<void> {
  const rows = JSON.stringify(checks.map((c) => checkSchema.parse(c)));
  await pool.query(
    `INSERT INTO cutter_governance.verify_result (run_id, passed, checks) VALUES ($1, $2, $3::jsonb)
     ON CONFLICT (run_id) DO UPDATE SET passed = $2, checks = $3::jsonb, verified_at = now()`,
    [runId, checks.every((c) => c.passed), rows],
  );
}

/** A run's stored verification table, or null before verify wrote it. */
export async function loadVerifyResult(db: Pool | PoolClient, runId: string): Promise<{ passed: boolean; checks: Check[] } | null> {
  const { rows } = await db.query<{ passed: boolean; checks: unknown }>('SELECT passed, checks FROM cutter_governance.verify_result WHERE run_id = $1', [runId]);
  const row = rows[0];
  return row ? { passed: row.passed, checks: checkSchema.array().parse(row.checks) } : null;
}
