import copyStreams from 'pg-copy-streams';
import type { Pool, PoolClient } from '../db/pool.js';
import { CutterError } from '../errors.js';
import type { SnapshotSource } from '../snapshot/source.js';

/**
 * A revert's input (docs/undo.md), computed from what the reverted run
 * recorded rather than read from a file: for each unit its plan changed, the
 * state and body the unit had before (from the item's pre_state and the
 * unit's version pre_version), or `retired` with its body as it is for a
 * unit it created. A unit is judged drifted when it is no longer exactly as
 * that run left it: missing, another state, version or body hash, or a later
 * row in its lifecycle log (which names the run that changed it).
 *
 * The input is a snapshot in all but origin: NDJSON lines of
 * {"key", "state", "body"} in byte order of key, staged by the same code as
 * a file (shared/snapshot/stage.ts), and planned by the same diff, so a
 * revert is a run like any other from discover on.
 */

type Db = Pool | PoolClient;

/**
 * The reverted run's items beside their units now, each judged drifted or
 * not. `:run` is the reverted run's id (a parameter or a setting, never text
 * from input). Keys are unique per run and per corpus, so each item meets at
 * most one unit. The lifecycle log is read once, grouped by unit: the last
 * row of each unit, and the reverted run's own row.
 */
const JUDGED = (run: string) => `
  items AS MATERIALIZED (
    SELECT i.key, i.pre_state, i.pre_version, i.post_state, i.post_version, i.post_body_sha256,
           u.id AS unit_id, u.state, u.current_version, cv.body_sha256
      FROM cutter_governance.cut_change_item i
      JOIN cutter_governance.run r ON r.run_id = i.run_id
      LEFT JOIN public.information_unit u ON u.corpus = r.corpus AND u.key = i.key
      LEFT JOIN public.unit_version cv ON cv.unit_id = u.id AND cv.version = u.current_version
     WHERE i.run_id = ${run}
  ), log AS (
    SELECT l.unit_id, max(l.id) AS last_id, max(l.id) FILTER (WHERE l.run_id = ${run}) AS its_id
      FROM public.iu_lifecycle_log l
     WHERE l.unit_id IN (SELECT unit_id FROM items)
     GROUP BY l.unit_id
  ), judged AS (
    SELECT it.*, log.last_id, log.its_id,
           (it.unit_id IS NULL OR it.state <> it.post_state OR it.current_version <> it.post_version
            OR it.body_sha256 IS DISTINCT FROM it.post_body_sha256
            OR log.its_id IS NULL OR log.its_id <> log.last_id) AS drifted
      FROM items it LEFT JOIN log ON log.unit_id = it.unit_id
  )`;

/** Every drifted unit with the run that changed it last (null: no run recorded the change), and the item count. $1 = the reverted run. */
const DRIFT_SQL = `
  WITH ${JUDGED('$1')}
  SELECT j.key,
         CASE WHEN j.last_id IS DISTINCT FROM j.its_id THEN (SELECT l.run_id FROM public.iu_lifecycle_log l WHERE l.id = j.last_id) END AS changed_by_run,
         (SELECT count(*)::int FROM judged) AS items
    FROM judged j WHERE j.drifted
   ORDER BY j.key COLLATE "C"`;

const ITEM_COUNT_SQL = 'SELECT count(*)::int AS n FROM cutter_governance.cut_change_item WHERE run_id = $1';

/**
 * The input as NDJSON, one unit a line in byte order of key, the drifted
 * units left out. COPY takes no $n parameters: the run travels as the
 * setting cutter.revert_of. The CSV format with a quote and a delimiter that
 * JSON text never holds (PostgreSQL's JSON escapes every control character)
 * prints each line exactly as json_build_object wrote it: the text format
 * would double every backslash.
 */
const INPUT_COPY = `COPY (
  WITH ${JUDGED("current_setting('cutter.revert_of')")}
  SELECT json_build_object('key', j.key, 'state', coalesce(j.pre_state, 'retired'), 'body', b.body)::text
    FROM judged j
    JOIN public.unit_version b ON b.unit_id = j.unit_id AND b.version = coalesce(j.pre_version, j.current_version)
   WHERE NOT j.drifted
   ORDER BY j.key COLLATE "C") TO STDOUT WITH (FORMAT csv, DELIMITER E'\\x02', QUOTE E'\\x01')`;

/** A unit changed after the reverted run. */
export interface DriftedUnit {
  key: string;
  /** The run that changed it last; null when no run recorded the change (or the unit is gone). */
  changed_by_run: string | null;
}

/** How a run's units stand for its revert. */
export interface RevertJudgement {
  /** The units its plan changed. */
  items: number;
  /** Those changed since, in byte order of key. */
  drifted: DriftedUnit[];
}

/**
 * Refuses, naming why, a run that is no live run that succeeded (a dry run
 * applied nothing; a run that failed, expired or was cancelled or rejected
 * has no applied plan to invert). Returns its target.
 */
export async function requireRevertible(db: Db, runId: string): Promise<{ target: string; corpus: string }> {
  const { rows } = await db.query<{ mode: string; status: string; target: string; corpus: string; failed_phase: string | null; applied: boolean }>(
    `SELECT r.mode, r.status, r.target, r.corpus, r.failed_phase,
            EXISTS (SELECT 1 FROM cutter_governance.execution_ledger l WHERE l.run_id = r.run_id) AS applied
       FROM cutter_governance.run r WHERE r.run_id = $1`,
    [runId],
  );
  const run = rows[0];
  if (!run) throw new CutterError('RUN_UNKNOWN', `no run ${runId}`, { kind: 'bad_input' });
  const refuse = (why: string) => new CutterError('REVERT_NOT_REVERTIBLE', `run ${runId} cannot be reverted: ${why}`, { kind: 'refused' });
  if (run.mode !== 'live') throw refuse('it is a dry run, which applied nothing');
  if (run.status !== 'succeeded') {
    const inFlight = ['queued', 'running', 'awaiting_approval'].includes(run.status);
    if (inFlight) throw refuse(`it is still ${run.status}; only a live run that succeeded can be reverted (wait for it to end, or cancel it)`);
    const applied = run.applied
      ? ` Its plan was applied but the run ended ${run.status}${run.failed_phase ? ` in ${run.failed_phase}` : ''}: restore its backup instead (docs/undo.md)`
      : '';
    throw refuse(`it ended ${run.status}; only a live run that succeeded can be reverted.${applied}`);
  }
  if (!run.applied) throw refuse('the execution ledger has no record of its plan being applied');
  return { target: run.target, corpus: run.corpus };
}

/** The reverted run's units judged: how many its plan changed, and which of them changed since. */
export async function judgeRevert(db: Db, revertOf: string): Promise<RevertJudgement> {
  const { rows } = await db.query<DriftedUnit & { items: number }>(DRIFT_SQL, [revertOf]);
  const items = rows[0]?.items ?? (await db.query<{ n: number }>(ITEM_COUNT_SQL, [revertOf])).rows[0]?.n ?? 0;
  return { items, drifted: rows.map((r) => ({ key: r.key, changed_by_run: r.changed_by_run })) };
}

/** "KEY (changed by run R)" or "KEY (changed outside any run)", the first `limit`, then how many more. */
export function describeDrift(drifted: readonly DriftedUnit[], limit = 50): string {
  const listed = drifted
    .slice(0, limit)
    .map((d) => `${d.key} (${d.changed_by_run ? `changed by run ${d.changed_by_run}` : 'changed with no run recorded'})`);
  return `${listed.join(', ')}${drifted.length > limit ? `, and ${drifted.length - limit} more` : ''}`;
}

/**
 * What stops a revert before anything is written: a drifted unit unless the
 * operator leaves them out (REVERT_DRIFTED, naming each key and the run that
 * changed it), or nothing left to revert (REVERT_NOTHING_LEFT).
 */
export function refuseRevert(revertOf: string, judged: RevertJudgement, skipDrifted: boolean): void {
  const n = judged.drifted.length;
  if (n > 0 && !skipDrifted) {
    throw new CutterError(
      'REVERT_DRIFTED',
      `run ${revertOf} cannot be reverted as it is: ${n} of the ${judged.items} unit(s) it changed changed again after it: ${describeDrift(judged.drifted)}. ` +
        'A revert never overwrites a later change; --skip-drifted reverts the others and lists these as skipped',
      { kind: 'refused' },
    );
  }
  if (judged.items - n === 0) {
    throw new CutterError(
      'REVERT_NOTHING_LEFT',
      judged.items === 0
        ? `run ${revertOf} changed no unit: there is nothing to revert`
        : `every unit run ${revertOf} changed has changed again since (${describeDrift(judged.drifted)}): there is nothing left to revert`,
      { kind: 'refused' },
    );
  }
}

/**
 * The revert's input as a snapshot source: each open() runs the COPY on a
 * connection of its own from the pool (the staging transaction holds
 * another, busy with its COPY FROM). Its stamp is the count of units to
 * revert: the corpus lock (C4) keeps other runs out meanwhile, and a unit
 * changed by anyone else after the plan is refused by apply_plan's
 * preconditions anyway.
 */
export function revertSource(pool: Pool, revertOf: string, units: number): SnapshotSource {
  return {
    name: `(the inverse of run ${revertOf})`,
    // About 100 bytes a record; only sizes the staging's key index.
    stat: () => Promise.resolve({ size: units * 100, stamp: `revert:${revertOf}:${units}` }),
    open: () => copyInput(pool, revertOf),
  };
}

async function* copyInput(pool: Pool, revertOf: string): AsyncGenerator<Buffer> {
  const client = await pool.connect();
  let done = false;
  try {
    await client.query(`SELECT set_config('cutter.revert_of', $1, false)`, [revertOf]);
    for await (const chunk of client.query(copyStreams.to(INPUT_COPY))) yield chunk as Buffer;
    await client.query(`SELECT set_config('cutter.revert_of', '', false)`);
    done = true;
  } finally {
    // A reader that stopped early leaves the COPY unfinished: that connection is not reused.
    client.release(done ? undefined : new Error('revert input read stopped early'));
  }
}
