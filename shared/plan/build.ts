import { createHash } from 'node:crypto';
import type { PoolClient } from '../db/pool.js';
import { isPgError } from '../db/errors.js';
import { atomically } from '../db/savepoint.js';
import { CutterError } from '../errors.js';
import { requireC3 } from '../targets/criteria.js';
import type { TargetRecord } from '../targets/registry.js';
import { planSummary, type PlanSummary } from '../jobs/results.js';
import { canonicalHeader, hashStoredItems } from './hash.js';
import { runAllowance, type RunAllowance } from './run-allowance.js';
import { allowanceExcess, scopeOfSummary } from './scope.js';

/**
 * Cutplan: the staged snapshot of a run, diffed against the corpus, becomes
 * the run's change set (cut_change_set) and one item per unit that changes
 * (cut_change_item). Set-based: the diff is one INSERT … SELECT; no unit
 * crosses the network. A unit whose snapshot record equals the corpus (same
 * state, same body) gets no item; a unit absent from the snapshot is left
 * alone.
 */

/**
 * One statement, one pass over the join: the changed units (`diff`), those
 * among them that make a forbidden move, and the insert of the items, which
 * writes nothing when any move is forbidden. Returns the forbidden moves (the
 * first 20 by key, and how many) and the item counts by op and transition.
 * $1 run id, $2 corpus, $3 the run it reverts (null for a run of a snapshot).
 * Bodies are compared by their sha256. Among changed units of a snapshot's
 * plan, a retired one is always forbidden: out of retired, or revised. A
 * revert's plan is judged by the database instead, item by item against the
 * reverted run's (trigger cut_change_item_revert: exactly the inverse, and
 * nothing else), since its moves are the ones forbidden here.
 */
const DIFF_AND_INSERT = `
  WITH diff AS MATERIALIZED (
    SELECT s.key, s.state AS post_state, s.body_sha256 AS post_sha, s.body,
           u.id AS unit_id, u.state AS pre_state, u.current_version AS pre_version, v.body_sha256 AS pre_sha
      FROM cutter_governance.snapshot_record s
      LEFT JOIN public.information_unit u ON u.corpus = $2 AND u.key = s.key
      LEFT JOIN public.unit_version v ON v.unit_id = u.id AND v.version = u.current_version
     WHERE s.run_id = $1
       AND (u.id IS NULL OR u.state <> s.state OR v.body_sha256 IS DISTINCT FROM s.body_sha256)
  ), forbidden AS (
    SELECT key, coalesce(pre_state, 'new') AS from_state, post_state AS to_state
      FROM diff
     WHERE $3::text IS NULL
       AND ((unit_id IS NULL AND post_state = 'retired') OR pre_state = 'retired'
            OR (pre_state = 'enacted' AND post_state = 'draft'))
  ), items AS (
    INSERT INTO cutter_governance.cut_change_item
      (run_id, key, op, transition, unit_id, pre_state, pre_version, pre_body_sha256,
       post_state, post_version, post_body_sha256, post_body)
    SELECT $1, key,
           CASE WHEN unit_id IS NULL THEN 'create'
                WHEN pre_state <> post_state AND pre_sha IS DISTINCT FROM post_sha THEN 'revise+transition'
                WHEN pre_state <> post_state THEN 'transition'
                ELSE 'revise' END,
           CASE WHEN unit_id IS NULL THEN 'new->' || post_state
                WHEN pre_state <> post_state THEN pre_state || '->' || post_state END,
           unit_id, pre_state, pre_version, pre_sha,
           post_state,
           CASE WHEN unit_id IS NULL THEN 1
                WHEN pre_sha IS DISTINCT FROM post_sha THEN pre_version + 1
                ELSE pre_version END,
           post_sha,
           CASE WHEN unit_id IS NULL OR pre_sha IS DISTINCT FROM post_sha THEN body END
      FROM diff
     WHERE NOT EXISTS (SELECT 1 FROM forbidden)
    RETURNING op, transition
  )
  SELECT (SELECT count(*)::int FROM forbidden) AS forbidden_total,
         (SELECT coalesce(json_agg(f), '[]'::json)
            FROM (SELECT * FROM forbidden ORDER BY key COLLATE "C" LIMIT 20) f) AS forbidden,
         (SELECT coalesce(json_agg(c), '[]'::json)
            FROM (SELECT op, transition, count(*)::int AS n FROM items GROUP BY op, transition) c) AS counts`;

/**
 * Memory for the diff's hash joins: with the default 4 MB a million-unit
 * diff spills to 16–32 batches on disk (measured 18.9 s against 12.9 s at
 * 64 MB). Raised for that one statement, then put back.
 */
export const PLAN_WORK_MEM = '64MB';

interface DiffResult {
  forbidden_total: number;
  forbidden: { key: string; from_state: string; to_state: string }[];
  counts: { op: string; transition: string | null; n: number }[];
}

const PLACEHOLDER_SHA = '0'.repeat(64);

/**
 * Builds (or, when it exists, returns) the change set of a run whose snapshot
 * is staged. Refuses, writing nothing: a live plan of a protected corpus
 * (C3_PROTECTED), forbidden transitions (PLAN_FORBIDDEN_TRANSITION, naming
 * keys) and a plan beyond the target's allowance (C6_ALLOWANCE). Runs under a
 * savepoint inside the caller's transaction, or in its own.
 */
export async function buildPlan(client: PoolClient, args: { runId: string; target: TargetRecord }): Promise<PlanSummary> {
  const { runId, target } = args;
  return atomically(client, async () => {
    // Two deliveries of the same cutplan job take turns; the second finds the first's plan.
    await client.query(`SELECT pg_advisory_xact_lock(hashtext('cutter.plan'), hashtext($1))`, [runId]);
    const run = await client.query<{ mode: 'dry' | 'live'; target: string; corpus: string; revert_of: string | null }>(
      'SELECT mode, target, corpus, revert_of FROM cutter_governance.run WHERE run_id = $1',
      [runId],
    );
    const row = run.rows[0];
    if (!row) throw new CutterError('RUN_UNKNOWN', `no run ${runId}: a plan is built for an existing run`);
    if (row.target !== target.name || row.corpus !== target.corpus) {
      throw new CutterError('PLAN_TARGET_MISMATCH', `run ${runId} is for target ${row.target} (corpus ${row.corpus}), not ${target.name} (corpus ${target.corpus})`);
    }
    const existing = await storedSummary(client, runId);
    if (existing) return existing;

    await requireC3(client, target, row.mode);
    const staged = await client.query('SELECT 1 FROM cutter_governance.snapshot_record WHERE run_id = $1 LIMIT 1', [runId]);
    if (!staged.rowCount) throw new CutterError('PLAN_NO_SNAPSHOT', `run ${runId} has no staged snapshot: discover stages it first`);

    // The items reference the set, so the set comes first; its hash and counts are filled in below.
    await client.query(
      `INSERT INTO cutter_governance.cut_change_set (run_id, target, corpus, plan_sha256, unit_count, by_op, by_transition)
       VALUES ($1, $2, $3, $4, 0, '{}', '{}')`,
      [runId, target.name, target.corpus, PLACEHOLDER_SHA],
    );
    const before = await client.query<{ wm: string }>(`SELECT current_setting('work_mem') AS wm, set_config('work_mem', $1, true)`, [PLAN_WORK_MEM]);
    const diff = (await client.query<DiffResult>(DIFF_AND_INSERT, [runId, target.corpus, row.revert_of]).catch((err: unknown) => refuseNotInverse(err, row.revert_of))).rows[0];
    await client.query(`SELECT set_config('work_mem', $1, true)`, [before.rows[0]?.wm ?? PLAN_WORK_MEM]);
    if (!diff) throw new Error('the diff statement returned no row');
    refuseForbidden(diff);
    const counts = summarise(diff.counts);
    checkC6(target, counts, await runAllowance(client, runId, target));

    const hash = createHash('sha256').update(canonicalHeader(target.corpus));
    await hashStoredItems(client, runId, hash);
    const summary: PlanSummary = { plan_sha256: hash.digest('hex'), ...counts };
    await client.query(
      `UPDATE cutter_governance.cut_change_set SET plan_sha256 = $2, unit_count = $3, by_op = $4::jsonb, by_transition = $5::jsonb
        WHERE run_id = $1`,
      [runId, summary.plan_sha256, summary.unit_count, JSON.stringify(summary.by_op), JSON.stringify(summary.by_transition)],
    );
    return summary;
  });
}

/** The summary of a change set already built for the run, or null. */
export async function storedSummary(client: PoolClient, runId: string): Promise<PlanSummary | null> {
  const { rows } = await client.query<Record<string, unknown>>(
    'SELECT plan_sha256, unit_count, by_op, by_transition FROM cutter_governance.cut_change_set WHERE run_id = $1',
    [runId],
  );
  if (!rows[0]) return null;
  const r = planSummary.parse(rows[0]);
  // jsonb reorders keys; give them back in the order a fresh plan has.
  const sorted = (o: Record<string, number>) => sortedRecord(new Map(Object.entries(o)));
  return { plan_sha256: r.plan_sha256, unit_count: r.unit_count, by_op: sorted(r.by_op), by_transition: sorted(r.by_transition) };
}

function refuseForbidden(diff: DiffResult): void {
  if (diff.forbidden_total === 0) return;
  const listed = diff.forbidden.map((r) => `${r.key} ${r.from_state === r.to_state ? `${r.from_state} (revise)` : `${r.from_state}->${r.to_state}`}`);
  const more = diff.forbidden_total > listed.length ? `, and ${diff.forbidden_total - listed.length} more` : '';
  throw new CutterError(
    'PLAN_FORBIDDEN_TRANSITION',
    `the snapshot asks for ${diff.forbidden_total} forbidden transition(s): ${listed.join(', ')}${more}. ` +
      'A unit never leaves retired (nor is revised once retired), never goes from enacted back to draft, and is never created retired.',
    { kind: 'refused' },
  );
}

/**
 * The database refused the items (trigger cut_change_item_revert): a
 * revert's item that is not the inverse of the reverted run's (a unit
 * changed between discover and cutplan), or a revert's move in a plan that
 * is no revert's.
 */
function refuseNotInverse(err: unknown, revertOf: string | null): never {
  if (!isPgError(err, 'CX011') && !isPgError(err, 'CX010')) throw err;
  const why = (err as Error).message;
  throw new CutterError(
    'PLAN_FORBIDDEN_TRANSITION',
    revertOf
      ? `${why}: a revert takes, for each unit, exactly the inverse of what run ${revertOf} did to it (a unit changed since its input was computed: enqueue the revert again)`
      : `${why}: only a revert takes the inverse of a transition`,
    { kind: 'refused', cause: err },
  );
}

/** Sorted keys, so the JSON of a summary is stable. */
function sortedRecord(counts: Map<string, number>): Record<string, number> {
  return Object.fromEntries([...counts].sort(([a], [b]) => (a < b ? -1 : 1)));
}

function summarise(rows: DiffResult['counts']): Omit<PlanSummary, 'plan_sha256'> {
  const byOp = new Map<string, number>();
  const byTransition = new Map<string, number>();
  const add = (m: Map<string, number>, k: string, n: number) => m.set(k, (m.get(k) ?? 0) + n);
  let units = 0;
  for (const r of rows) {
    units += r.n;
    add(byOp, r.op, r.n);
    if (r.transition !== null) add(byTransition, r.transition, r.n);
    if (r.op === 'revise' || r.op === 'revise+transition') add(byTransition, 'revise', r.n);
  }
  return { unit_count: units, by_op: sortedRecord(byOp), by_transition: sortedRecord(byTransition) };
}

/**
 * C6: within max_units, and every transition kind (revise included) allowed
 * by the target: its allowed_transitions, or for a revert those inverted
 * (shared/plan/run-allowance.ts).
 */
export function checkC6(
  target: Pick<TargetRecord, 'name' | 'maxUnits' | 'allowedTransitions'>,
  counts: Omit<PlanSummary, 'plan_sha256'>,
  allowance: Pick<RunAllowance, 'transitions' | 'label'> = { transitions: target.allowedTransitions, label: 'allowed_transitions' },
): void {
  const excess = allowanceExcess(scopeOfSummary(counts), { maxUnits: target.maxUnits, transitions: allowance.transitions });
  if (!excess) return;
  const problems: string[] = [];
  if (excess.units !== null) problems.push(`${excess.units} units is over max_units ${target.maxUnits}`);
  if (excess.transitions.length) {
    const listed = excess.transitions.map((k) => `${k} (${counts.by_transition[k] ?? 0} units)`);
    problems.push(`transitions not in ${allowance.label} (${allowance.transitions.join(', ')}): ${listed.join(', ')}`);
  }
  throw new CutterError('C6_ALLOWANCE', `C6: the plan exceeds target ${target.name}'s allowance: ${problems.join('; ')}`, { kind: 'refused' });
}
