import copyStreams from 'pg-copy-streams';
import type { Pool, PoolClient } from '../db/pool.js';
import type { SnapshotSource } from '../snapshot/source.js';
import type { DriftedUnit, RevertJudgement } from './judge.js';

/**
 * A revert's input (docs/undo.md), computed from what the reverted run
 * recorded rather than read from a file: for each unit its plan changed, the
 * state and body the unit had before (the item's pre_state and the unit's
 * version pre_version), or `retired` with its body as it is for a unit it
 * created. A unit is judged drifted, and left out, when it is no longer
 * exactly as that run left it: missing, another state, version or body hash,
 * or a later row in its lifecycle log (which names the run that changed it).
 *
 * The input is a snapshot in all but origin: NDJSON lines of
 * {"key", "state", "body"} in byte order of key, checked and staged by the
 * same code as a file (shared/snapshot/stage.ts) and planned by the same
 * diff, so a revert is a run like any other from discover on.
 *
 * It is computed once, on a connection of its own (the staging transaction
 * holds another, busy with its COPY FROM), into temporary tables of that
 * session, which it analyzes: the run's items were often just written and
 * not yet analyzed, and planned on a guess of a few dozen rows the joins ran
 * as nested loops over an aggregate of the lifecycle log (39 s for 10,000
 * units). With real row counts PostgreSQL hashes a large revert and looks up
 * a small one.
 */

/**
 * Memory for the computation's joins and the sort by key: at the default
 * 4 MB a 100,000-unit input's sort spilled to disk. Set for this session
 * only, and put back before the connection returns to the pool.
 */
const INPUT_WORK_MEM = '64MB';

/** The reverted run's items. $1 = that run. */
const ITEMS = `
  CREATE TEMP TABLE revert_item (key text NOT NULL, pre_state text, pre_version integer, post_state text NOT NULL,
                                 post_version integer NOT NULL, post_body_sha256 text NOT NULL);
  CREATE TEMP TABLE revert_input (key text NOT NULL, state text NOT NULL, unit_id bigint, body_version integer,
                                  drifted boolean NOT NULL, changed_by_run text)`;
const LOAD_ITEMS = `
  INSERT INTO pg_temp.revert_item
  SELECT key, pre_state, pre_version, post_state, post_version, post_body_sha256
    FROM cutter_governance.cut_change_item WHERE run_id = $1`;

/**
 * Each item beside its unit now: the state to give it back, the version
 * whose body it gets back (pre_version, or its current one for a unit the
 * run created), and drifted when the unit is gone or not as the run left
 * it. $1 = the corpus.
 */
const JUDGE_UNITS = `
  INSERT INTO pg_temp.revert_input (key, state, unit_id, body_version, drifted)
  SELECT i.key, coalesce(i.pre_state, 'retired'), u.id, coalesce(i.pre_version, u.current_version),
         u.id IS NULL OR u.state <> i.post_state OR u.current_version <> i.post_version
         OR cv.body_sha256 IS DISTINCT FROM i.post_body_sha256
    FROM pg_temp.revert_item i
    LEFT JOIN public.information_unit u ON u.corpus = $1 AND u.key = i.key
    LEFT JOIN public.unit_version cv ON cv.unit_id = u.id AND cv.version = u.current_version`;

/**
 * A unit whose last lifecycle row is not the reverted run's was changed
 * after it, by the run that wrote that row (none recorded: null), or is not
 * in the log as that run changed it. $1 = the reverted run.
 */
const JUDGE_LOG = `
  UPDATE pg_temp.revert_input r
     SET drifted = true, changed_by_run = (SELECT l.run_id FROM public.iu_lifecycle_log l WHERE l.id = g.last_id AND g.last_id <> g.its_id)
    FROM (SELECT l.unit_id, max(l.id) AS last_id, coalesce(max(l.id) FILTER (WHERE l.run_id = $1), 0) AS its_id
            FROM public.iu_lifecycle_log l
           WHERE l.unit_id IN (SELECT unit_id FROM pg_temp.revert_input WHERE unit_id IS NOT NULL)
           GROUP BY l.unit_id) g
   WHERE g.unit_id = r.unit_id AND g.last_id <> g.its_id`;

const DRIFTED = `
  SELECT key, changed_by_run, (SELECT count(*)::int FROM pg_temp.revert_input) AS items
    FROM pg_temp.revert_input WHERE drifted ORDER BY key COLLATE "C"`;

/**
 * The input as NDJSON, the drifted units left out, each body read from its
 * version. The CSV format with a quote and a delimiter that JSON text never
 * holds (PostgreSQL's JSON escapes every control character) prints each line
 * exactly as json_build_object wrote it: the text format would double every
 * backslash.
 */
const INPUT_COPY = `COPY (
  SELECT json_build_object('key', r.key, 'state', r.state, 'body', b.body)::text
    FROM pg_temp.revert_input r JOIN public.unit_version b ON b.unit_id = r.unit_id AND b.version = r.body_version
   WHERE NOT r.drifted ORDER BY r.key COLLATE "C")
  TO STDOUT WITH (FORMAT csv, DELIMITER E'\\x02', QUOTE E'\\x01')`;

const DROP = 'DROP TABLE IF EXISTS pg_temp.revert_item, pg_temp.revert_input';

/** A computed revert input: how the units stand, the source to stage, and close() once staged. */
export interface RevertInput {
  judgement: RevertJudgement;
  source: SnapshotSource;
  close: () => Promise<void>;
}

/** Computes the inverse of revertOf's applied plan (of corpus) now, judging each unit. */
export async function computeRevertInput(pool: Pool, revertOf: string, corpus: string): Promise<RevertInput> {
  const client = await pool.connect();
  let broken: Error | undefined;
  const close = async (): Promise<void> => {
    try {
      if (!broken) await client.query(`${DROP}; RESET work_mem`);
    } catch (err) {
      broken = err as Error;
    } finally {
      client.release(broken);
    }
  };
  try {
    await client.query(`SELECT set_config('work_mem', $1, false)`, [INPUT_WORK_MEM]);
    await client.query(`${DROP}; ${ITEMS}`);
    await client.query(LOAD_ITEMS, [revertOf]);
    await client.query('ANALYZE pg_temp.revert_item');
    await client.query(JUDGE_UNITS, [corpus]);
    await client.query('ANALYZE pg_temp.revert_input');
    await client.query(JUDGE_LOG, [revertOf]);
    const { rows } = await client.query<DriftedUnit & { items: number }>(DRIFTED);
    const items = rows[0]?.items ?? (await client.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_temp.revert_input')).rows[0]?.n ?? 0;
    const judgement = { items, drifted: rows.map((r) => ({ key: r.key, changed_by_run: r.changed_by_run })) };
    const units = items - judgement.drifted.length;
    const source: SnapshotSource = {
      name: `(the inverse of run ${revertOf})`,
      // Held still in the session's tables; about 100 bytes a record only sizes the key index.
      stat: () => Promise.resolve({ size: units * 100, stamp: `revert:${revertOf}:${units}` }),
      open: () => copyOut(client, (err) => (broken = err)),
    };
    return { judgement, source, close };
  } catch (err) {
    broken = err as Error;
    await close();
    throw err;
  }
}

/** How revertOf's units stand now (what `cutter revert` checks before it enqueues). */
export async function judgeRevert(pool: Pool, revertOf: string, corpus: string): Promise<RevertJudgement> {
  const input = await computeRevertInput(pool, revertOf, corpus);
  await input.close();
  return input.judgement;
}

/**
 * One read of the input. A reader that stops early (the staging stops at
 * the first invalid record) leaves the COPY unfinished: the rest is drained,
 * so the session, and its tables, can be read again.
 */
async function* copyOut(client: PoolClient, onBroken: (err: Error) => void): AsyncGenerator<Buffer> {
  const chunks = client.query(copyStreams.to(INPUT_COPY))[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let done = false;
  try {
    for (;;) {
      const next = await chunks.next();
      if (next.done) break;
      yield next.value;
    }
    done = true;
  } finally {
    if (!done) {
      try {
        while (!(await chunks.next()).done) {
          // draining
        }
      } catch (err) {
        onBroken(err as Error);
      }
    }
  }
}
