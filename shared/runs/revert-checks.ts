import type { Pool } from '../db/pool.js';
import type { Check } from '../jobs/results.js';

/**
 * What a live revert's verify proves beyond any live run's checks (which
 * already hold every item's postcondition and everything outside the plan
 * unchanged): each unit it reverted has the state and body sha256 it had
 * before the reverted run (a unit that run created: retired), and every unit
 * that run changed was reverted or recorded as skipped.
 */

/** Keys (first 50) of the revert's units not as they were before the reverted run. */
const NOT_AS_BEFORE = `
  SELECT coalesce(array_agg(f.key ORDER BY f.key COLLATE "C"), '{}') AS keys
    FROM (SELECT i.key
            FROM cutter_governance.cut_change_item i
            JOIN cutter_governance.run r ON r.run_id = i.run_id
            LEFT JOIN cutter_governance.cut_change_item o ON o.run_id = r.revert_of AND o.key = i.key
            LEFT JOIN public.information_unit u ON u.corpus = r.corpus AND u.key = i.key
            LEFT JOIN public.unit_version v ON v.unit_id = u.id AND v.version = u.current_version
           WHERE i.run_id = $1
             AND (o.key IS NULL OR u.id IS NULL OR u.state <> coalesce(o.pre_state, 'retired')
                  OR v.body_sha256 IS DISTINCT FROM coalesce(o.pre_body_sha256, o.post_body_sha256))
           ORDER BY i.key COLLATE "C"
           LIMIT 50) f`;

const COUNTS = `
  SELECT (SELECT count(*)::int FROM cutter_governance.cut_change_item WHERE run_id = $2) AS reverted_run_units,
         (SELECT count(*)::int FROM cutter_governance.cut_change_item WHERE run_id = $1) AS reverted,
         (SELECT count(*)::int FROM cutter_governance.revert_skip WHERE run_id = $1) AS skipped`;

const check = (name: string, expected: unknown, actual: unknown): Check => ({ name, expected, actual, passed: JSON.stringify(expected) === JSON.stringify(actual) });

/** The revert's own checks, for verify's table. */
export async function revertChecks(pool: Pool, args: { runId: string; revertOf: string }): Promise<Check[]> {
  const [notAsBefore, counts] = await Promise.all([
    pool.query<{ keys: string[] }>(NOT_AS_BEFORE, [args.runId]),
    pool.query<{ reverted_run_units: number; reverted: number; skipped: number }>(COUNTS, [args.runId, args.revertOf]),
  ]);
  const c = counts.rows[0] ?? { reverted_run_units: -1, reverted: 0, skipped: 0 };
  return [
    check(`every reverted unit as before run ${args.revertOf} (state, body sha256; created: retired)`, [], notAsBefore.rows[0]?.keys ?? null),
    check(`every unit run ${args.revertOf} changed reverted or skipped`, c.reverted_run_units, c.reverted + c.skipped),
  ];
}
