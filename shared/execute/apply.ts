import type { PoolClient } from '../db/pool.js';

/**
 * The set-based statements execute runs inside its transaction, under the
 * exec role. Everything is server-side: the plan items are already in
 * Postgres, so no row crosses the network (FIELD-NOTES: fastest form).
 * $1 = run id, $2 = corpus, $3 = actor.
 */

/** Locks the planned units so nothing changes them between the drift check and the apply. */
const LOCK_UNITS = `
  SELECT u.id FROM public.information_unit u
    JOIN cutter_governance.cut_change_item i ON i.run_id = $1 AND i.key = u.key
   WHERE u.corpus = $2
   ORDER BY u.id
     FOR UPDATE OF u`;

/** Items whose precondition no longer holds: the corpus drifted since cutplan. */
const DRIFTED = `
  SELECT i.key
    FROM cutter_governance.cut_change_item i
    LEFT JOIN public.information_unit u ON u.corpus = $2 AND u.key = i.key
    LEFT JOIN public.unit_version v ON v.unit_id = u.id AND v.version = u.current_version
   WHERE i.run_id = $1
     AND CASE WHEN i.op = 'create' THEN u.id IS NOT NULL
              ELSE u.id IS NULL
                OR u.state IS DISTINCT FROM i.pre_state
                OR u.current_version IS DISTINCT FROM i.pre_version
                OR v.body_sha256 IS DISTINCT FROM i.pre_body_sha256 END
   ORDER BY i.key
   LIMIT 50`;

const INSERT_UNITS = `
  INSERT INTO public.information_unit (corpus, key, state, current_version)
  SELECT $2, i.key, i.post_state, i.post_version
    FROM cutter_governance.cut_change_item i
   WHERE i.run_id = $1 AND i.op = 'create'`;

const UPDATE_UNITS = `
  UPDATE public.information_unit u
     SET state = i.post_state, current_version = i.post_version, updated_at = now()
    FROM cutter_governance.cut_change_item i
   WHERE i.run_id = $1 AND i.op <> 'create' AND u.corpus = $2 AND u.key = i.key`;

const INSERT_VERSIONS = `
  INSERT INTO public.unit_version (unit_id, version, body, body_sha256, created_by_run)
  SELECT u.id, i.post_version, i.post_body, i.post_body_sha256, $1
    FROM cutter_governance.cut_change_item i
    JOIN public.information_unit u ON u.corpus = $2 AND u.key = i.key
   WHERE i.run_id = $1 AND i.post_body IS NOT NULL`;

const INSERT_LOG = `
  INSERT INTO public.iu_lifecycle_log (unit_id, from_state, to_state, version, run_id, actor)
  SELECT u.id, i.pre_state, i.post_state, i.post_version, $1, $3
    FROM cutter_governance.cut_change_item i
    JOIN public.information_unit u ON u.corpus = $2 AND u.key = i.key
   WHERE i.run_id = $1
   ORDER BY i.key`;

/** Items whose postcondition does not hold after the apply. */
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

/** Keys whose preconditions fail (empty when the corpus is as planned). Locks the planned rows. */
export async function lockAndFindDrift(client: PoolClient, runId: string, corpus: string): Promise<string[]> {
  await client.query(LOCK_UNITS, [runId, corpus]);
  const { rows } = await client.query<{ key: string }>(DRIFTED, [runId, corpus]);
  return rows.map((r) => r.key);
}

/** Applies the plan set-based; the caller holds the transaction. */
export async function applyPlan(client: PoolClient, runId: string, corpus: string, actor: string): Promise<ApplyCounts> {
  const created = await client.query(INSERT_UNITS, [runId, corpus]);
  const updated = await client.query(UPDATE_UNITS, [runId, corpus]);
  const versions = await client.query(INSERT_VERSIONS, [runId, corpus]);
  const log = await client.query(INSERT_LOG, [runId, corpus, actor]);
  return {
    units_created: created.rowCount ?? 0,
    units_updated: updated.rowCount ?? 0,
    versions_written: versions.rowCount ?? 0,
    log_rows: log.rowCount ?? 0,
  };
}

/** Keys whose postcondition fails after the apply (empty when the plan landed exactly). */
export async function findPostconditionFailures(client: PoolClient, runId: string, corpus: string): Promise<string[]> {
  const { rows } = await client.query<{ key: string }>(POST_MISMATCH, [runId, corpus]);
  return rows.map((r) => r.key);
}
