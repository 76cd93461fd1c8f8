import type { Pool, PoolClient } from '../db/pool.js';
import { findPostconditionFailures } from '../execute/postconditions.js';
import { check as checkSchema, type Check, type CorpusFingerprint } from '../jobs/results.js';
import { countCorpus, fingerprintCorpus, fingerprintOutsideRun } from './fingerprint.js';

const check = (name: string, expected: unknown, actual: unknown): Check => ({
  name,
  expected,
  actual,
  passed: JSON.stringify(expected) === JSON.stringify(actual),
});

/**
 * Dry run: the run's corpus is byte for byte what the baseline recorded, the
 * kill switch is for this run what it was, and nothing was applied.
 */
export async function dryRunChecks(
  pool: Pool,
  args: { runId: string; corpus: string; baseline: CorpusFingerprint[]; switchForRun: boolean },
): Promise<Check[]> {
  const { runId, corpus } = args;
  const now = await fingerprintCorpus(pool, corpus);
  const checks = args.baseline.map((b) => {
    const a = now.find((t) => t.table === b.table);
    return check(`${b.table} unchanged`, { rows: b.rows, hash: b.hash }, a ? { rows: a.rows, hash: a.hash } : null);
  });
  checks.push(check('execution_enabled(run) as before', args.switchForRun, await switchOn(pool, runId)));
  checks.push(check('no execution ledger row', 0, await ledgerRows(pool, runId)));
  return checks;
}

/**
 * Live run: the corpus's counts are its baseline plus exactly the plan's
 * deltas, every row of the corpus outside the plan is unchanged, every
 * item's postcondition holds, the ledger has the run once and the kill
 * switch is off for the run. Other corpora and other runs' switch are not
 * this run's proof: live runs on other corpora may overlap it.
 */
export async function liveRunChecks(
  pool: Pool,
  args: { runId: string; corpus: string; baseline: CorpusFingerprint[]; outsideAtPlan: CorpusFingerprint[] },
): Promise<Check[]> {
  const { runId, corpus } = args;
  // Independent reads, side by side (each on its own connection of the pool).
  const [deltas, now, outside, postconditionFailures] = await Promise.all([
    expectedDeltas(pool, runId),
    countCorpus(pool, corpus),
    fingerprintOutsideRun(pool, runId, corpus),
    findPostconditionFailures(pool, runId),
  ]);
  const checks: Check[] = [];
  for (const b of args.baseline) {
    const delta = deltas[b.table] ?? 0;
    checks.push(check(`${b.table} rows = baseline + plan`, b.rows + delta, now.find((t) => t.table === b.table)?.rows ?? null));
  }
  for (const before of args.outsideAtPlan) {
    const after = outside.find((t) => t.table === before.table);
    checks.push(check(`${before.table} outside the plan unchanged`, { rows: before.rows, hash: before.hash }, after ? { rows: after.rows, hash: after.hash } : null));
  }
  checks.push(check('every item postcondition holds', [], postconditionFailures));
  checks.push(check('execution ledger row', 1, await ledgerRows(pool, runId)));
  checks.push(check('execution_enabled(run) off', false, await switchOn(pool, runId)));
  return checks;
}

async function expectedDeltas(pool: Pool, runId: string): Promise<Record<string, number>> {
  const { rows } = await pool.query<{ creates: number; bodies: number; items: number }>(
    `SELECT count(*) FILTER (WHERE op = 'create')::int AS creates,
            count(*) FILTER (WHERE post_body IS NOT NULL)::int AS bodies,
            count(*)::int AS items
       FROM cutter_governance.cut_change_item WHERE run_id = $1`,
    [runId],
  );
  const r = rows[0] ?? { creates: 0, bodies: 0, items: 0 };
  return { 'public.information_unit': r.creates, 'public.unit_version': r.bodies, 'public.iu_lifecycle_log': r.items };
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
