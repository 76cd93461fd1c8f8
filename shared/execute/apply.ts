import type { PoolClient } from '../db/pool.js';
import { CutterError } from '../errors.js';

/**
 * The set-based statement execute runs inside its transaction, under the exec
 * role. Everything is server-side: the plan items are already in Postgres, so
 * no row crosses the network (FIELD-NOTES: fastest form).
 *
 * One statement checks every precondition under the row lock, applies, and
 * proves every postcondition, without a pass over the plan of its own for
 * either check (a lock pass, a drift join and a postcondition join used to
 * cost more than the writes' own joins):
 *
 * - Preconditions, locked: each existing unit is changed by an UPDATE whose
 *   WHERE is the item's precondition (same id, key, state, version, and the
 *   body hash of that version). UPDATE takes the row lock before it writes,
 *   and when another transaction changed the row first, PostgreSQL waits for
 *   it, re-reads the newest row version under the lock and re-evaluates the
 *   WHERE on that (READ COMMITTED's EvalPlanQual). So every row written was
 *   checked while locked, and a drifted row is not written at all. The
 *   version row checked is (i.unit_id, i.pre_version), which the WHERE pins
 *   to (u.id, u.current_version); unit_id is not covered by the plan hash,
 *   but it only narrows the match (the key must agree too), so a wrong one
 *   fails closed as drift. A unit to create must not exist: ON CONFLICT DO
 *   NOTHING skips it (waiting, too, for a concurrent insert of the key to
 *   commit or abort). A skipped item is a drifted one: it gets no version or
 *   log row (so drift never surfaces as a constraint error), the statement
 *   names it, and execute rolls everything back.
 * - Postconditions, by construction: (corpus, key) is unique and the items'
 *   key (run_id, key) is too, so each item writes at most one unit and each
 *   unit is written by at most one item; "every item applied" is then
 *   created + updated = the plan's item count. An applied unit holds exactly
 *   the item's post state and version (RETURNING gives the stored row, so a
 *   trigger that changed it would show; triggers and rules are checked for too); when the
 *   item brings a body, the version row (id, post_version) is the one just
 *   inserted with post_body_sha256 (the primary key refuses a second one,
 *   and a CHECK holds the hash to the body); when it brings none, its
 *   post_version must equal pre_version and its post hash the pre hash,
 *   which the locked precondition just proved of that version row (version
 *   rows are append-only: the exec role may not UPDATE them). Rows we wrote
 *   stay locked (or invisible, when created) until commit, so nothing can
 *   undo them in between. The verify phase still checks every item
 *   independently after the commit (findPostconditionFailures).
 */

/** $1 = run id, $2 = corpus, $3 = actor, $4 = the plan's item count. */
const APPLY = `
  WITH created AS (
    INSERT INTO public.information_unit (corpus, key, state, current_version)
    SELECT $2, i.key, i.post_state, i.post_version
      FROM cutter_governance.cut_change_item i
     WHERE i.run_id = $1 AND i.op = 'create'
        ON CONFLICT (corpus, key) DO NOTHING
    RETURNING id, key, state, current_version
  ), updated AS (
    UPDATE public.information_unit u
       SET state = i.post_state, current_version = i.post_version, updated_at = now()
      FROM cutter_governance.cut_change_item i
      LEFT JOIN public.unit_version v ON v.unit_id = i.unit_id AND v.version = i.pre_version
     WHERE i.run_id = $1 AND i.op <> 'create'
       AND u.id = i.unit_id AND u.corpus = $2 AND u.key = i.key
       AND u.state = i.pre_state AND u.current_version = i.pre_version
       AND v.body_sha256 IS NOT DISTINCT FROM i.pre_body_sha256
    RETURNING u.id, u.key, u.state, u.current_version, i.pre_state, i.pre_version, i.pre_body_sha256,
              i.post_state, i.post_version, i.post_body, i.post_body_sha256
  ), applied AS (
    SELECT c.id, c.key, c.state, c.current_version, NULL::text AS pre_state, NULL::integer AS pre_version,
           NULL::text AS pre_body_sha256, i.post_state, i.post_version, i.post_body, i.post_body_sha256
      FROM created c
      JOIN cutter_governance.cut_change_item i ON i.run_id = $1 AND i.op = 'create' AND i.key = c.key
    UNION ALL
    SELECT id, key, state, current_version, pre_state, pre_version, pre_body_sha256,
           post_state, post_version, post_body, post_body_sha256
      FROM updated
  ), versions AS (
    INSERT INTO public.unit_version (unit_id, version, body, body_sha256, created_by_run)
    SELECT id, post_version, post_body, post_body_sha256, $1 FROM applied WHERE post_body IS NOT NULL
    RETURNING 1
  ), logged AS (
    INSERT INTO public.iu_lifecycle_log (unit_id, from_state, to_state, version, run_id, actor)
    SELECT id, pre_state, post_state, post_version, $1, $3 FROM applied
    RETURNING 1
  ), unproven AS (
    SELECT key FROM applied
     WHERE state IS DISTINCT FROM post_state OR current_version IS DISTINCT FROM post_version
        OR (post_body IS NULL AND (pre_version IS DISTINCT FROM post_version
                                   OR pre_body_sha256 IS DISTINCT FROM post_body_sha256))
  ), tally AS (
    SELECT count(*)::int AS applied, count(*) FILTER (WHERE post_body IS NOT NULL)::int AS bodies FROM applied
  )
  SELECT (SELECT count(*)::int FROM created) AS units_created,
         (SELECT count(*)::int FROM updated) AS units_updated,
         (SELECT count(*)::int FROM versions) AS versions_written,
         (SELECT count(*)::int FROM logged) AS log_rows,
         t.applied, t.bodies,
         ARRAY(SELECT key FROM unproven ORDER BY key COLLATE "C" LIMIT 50) AS unproven,
         -- Only on drift: the items the statement skipped (an anti-join the success path never runs).
         CASE WHEN t.applied <> $4 THEN ARRAY(
           SELECT i.key FROM cutter_governance.cut_change_item i
            WHERE i.run_id = $1 AND NOT EXISTS (SELECT 1 FROM applied a WHERE a.key = i.key)
            ORDER BY i.key COLLATE "C" LIMIT 50) END AS skipped
    FROM tally t`;

/**
 * Triggers (other than the foreign keys' own) and rules on the corpus tables.
 * The proof above reads the stored unit rows but assumes nothing rewrites a
 * version or log row, or changes a row again after the statement; with any
 * trigger or rule present, execute checks every postcondition with the full
 * join instead. Asked after the apply, whose table locks (held to commit)
 * keep a CREATE TRIGGER or CREATE RULE from landing in between.
 */
const REWRITERS = `
  SELECT (SELECT count(*) FROM pg_catalog.pg_trigger WHERE NOT tgisinternal AND tgrelid = ANY (t.rels))::int
       + (SELECT count(*) FROM pg_catalog.pg_rewrite WHERE ev_class = ANY (t.rels))::int AS n
    FROM (SELECT ARRAY['public.information_unit'::regclass, 'public.unit_version'::regclass,
                       'public.iu_lifecycle_log'::regclass]::oid[] AS rels) t`;

/** Items whose postcondition does not hold (the verify phase's check, and execute's when triggers or rules exist). */
const POST_MISMATCH = `
  SELECT i.key
    FROM cutter_governance.cut_change_item i
    LEFT JOIN public.information_unit u ON u.corpus = $2 AND u.key = i.key
    LEFT JOIN public.unit_version v ON v.unit_id = u.id AND v.version = u.current_version
   WHERE i.run_id = $1
     AND (u.id IS NULL OR u.state <> i.post_state OR u.current_version <> i.post_version
          OR v.body_sha256 IS DISTINCT FROM i.post_body_sha256)
   ORDER BY i.key
   LIMIT 50`;

export interface ApplyCounts {
  units_created: number;
  units_updated: number;
  versions_written: number;
  log_rows: number;
}

interface ApplyRow extends ApplyCounts {
  applied: number;
  bodies: number;
  unproven: string[];
  skipped: string[] | null;
}

/**
 * Applies the plan set-based, checking every precondition under the row lock
 * and every postcondition (see above); the caller holds the transaction and
 * rolls it back on a throw. EXECUTE_DRIFT names the units that were not as
 * planned; EXECUTE_POSTCONDITION the items whose result cannot be proven.
 */
export async function applyPlan(
  client: PoolClient,
  args: { runId: string; corpus: string; actor: string; unitCount: number },
): Promise<ApplyCounts> {
  const { rows } = await client.query<ApplyRow>(APPLY, [args.runId, args.corpus, args.actor, args.unitCount]);
  const r = rows[0];
  if (!r) throw new Error('the apply statement returned no row');
  const skipped = r.skipped ?? [];
  if (r.applied < args.unitCount && skipped.length) {
    throw new CutterError('EXECUTE_DRIFT', `the corpus changed since the plan was made; drifted keys: ${skipped.join(', ')}; nothing was applied`);
  }
  if (r.applied !== args.unitCount) {
    // Not a unit but the items themselves changed between the hash check and the apply.
    throw new CutterError('PLAN_TAMPERED', `run ${args.runId}: the plan has ${args.unitCount} items but ${r.applied} were applied; nothing was applied`);
  }
  const failures = [...r.unproven];
  if (!failures.length && (r.versions_written !== r.bodies || r.log_rows !== r.applied)) failures.push('(version or log rows missing)');
  if (!failures.length && ((await client.query<{ n: number }>(REWRITERS)).rows[0]?.n ?? 1) > 0) {
    failures.push(...(await findPostconditionFailures(client, args.runId, args.corpus)));
  }
  if (failures.length) {
    throw new CutterError('EXECUTE_POSTCONDITION', `postconditions failed for ${failures.join(', ')}; nothing was applied`);
  }
  return { units_created: r.units_created, units_updated: r.units_updated, versions_written: r.versions_written, log_rows: r.log_rows };
}

/** Keys whose postcondition fails after the apply (empty when the plan landed exactly). */
export async function findPostconditionFailures(client: PoolClient, runId: string, corpus: string): Promise<string[]> {
  const { rows } = await client.query<{ key: string }>(POST_MISMATCH, [runId, corpus]);
  return rows.map((r) => r.key);
}
