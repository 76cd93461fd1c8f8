import pg from 'pg';
import type { Pool } from '../db/pool.js';
import { withTransaction } from '../db/pool.js';
import { appendAudit } from '../audit/append.js';
import { DEMO_HISTORY, DEMO_PROTECTED, DEMO_WORKING, DEMO_WORK_TARGET, demoUnits, sha256Hex } from './corpus.js';
import { replayHistory, type HistoryRun } from './history.js';
import { localSovereign } from './sovereign.js';

export interface SeedOptions {
  /** The demo sovereign's folder (made when missing): its keys sign the history's approvals. */
  sovereignDir: string;
  /** The exec role execute runs as (CUTTER_EXEC_ROLE). */
  execRole?: string;
}

export interface SeedResult {
  unitsInserted: number;
  /** Targets this seed registered, in order. */
  targetsRegistered: string[];
  /** History runs this seed replayed. */
  runsReplayed: string[];
  /** The history's runs as they stand; empty when the corpus was seeded before the history existed. */
  runs: HistoryRun[];
}

const HISTORY_RUN_IDS = [DEMO_HISTORY.enactment.runId, DEMO_HISTORY.amendment.runId];

/**
 * Loads the demo corpus (DESIGN §2): on a database holding no unit of the
 * demo corpora, the import (158 drafts at version 1), then the history that
 * makes the seed's G0 (replayHistory). Idempotent: a second seed, or a seed
 * after a demo run, inserts nothing; a seed interrupted in the history
 * finishes it. A corpus loaded by an older seed (no history recorded with
 * its import) is left as it is. Seeds of one database take turns: each
 * holds an advisory lock on a connection of its own, outside the pool, so a
 * small pool is never short of the connections the history's phases use.
 */
export async function seedDemo(pool: Pool, actor: string, options: SeedOptions): Promise<SeedResult> {
  const lock = new pg.Client(pool.options);
  await lock.connect();
  try {
    await lock.query(`SELECT pg_advisory_lock(hashtext('cutter.demo.seed'))`);
    const unitsInserted = await importUnits(pool, actor);
    if (!(await importedWithHistory(pool))) return { unitsInserted, targetsRegistered: [], runsReplayed: [], runs: [] };
    const history = await replayHistory({ pool, actor, execRole: options.execRole ?? 'cutter_exec', sovereign: localSovereign(options.sovereignDir) });
    return { unitsInserted, ...history };
  } finally {
    // Closing the session lets go of its lock.
    await lock.end();
  }
}

/**
 * The import: every demo unit a draft at version 1, in one transaction,
 * only into a database holding none of them. No lifecycle rows: the log
 * records transitions, and an import is none. Audited as demo.seed, naming
 * the history runs that follow it (the mark that this database's demo corpus
 * has a history to replay).
 */
async function importUnits(pool: Pool, actor: string): Promise<number> {
  const units = demoUnits();
  return withTransaction(pool, async (client) => {
    const present = await client.query('SELECT 1 FROM public.information_unit WHERE corpus = ANY ($1::text[]) LIMIT 1', [[DEMO_PROTECTED.corpus, DEMO_WORKING.corpus]]);
    if (present.rowCount) return 0;
    const inserted = await client.query<{ id: number; key: string }>(
      `INSERT INTO public.information_unit (corpus, key, state, current_version)
       SELECT u.corpus, u.key, u.state, 1 FROM unnest($1::text[], $2::text[], $3::text[]) AS u(corpus, key, state)
       ON CONFLICT (corpus, key) DO NOTHING
       RETURNING id, key`,
      [units.map((u) => u.corpus), units.map((u) => u.key), units.map((u) => u.state)],
    );
    const bodies = new Map(units.map((u) => [u.key, u.body]));
    const rows = inserted.rows;
    await client.query(
      `INSERT INTO public.unit_version (unit_id, version, body, body_sha256, created_by_run)
       SELECT v.unit_id, 1, v.body, v.sha, NULL FROM unnest($1::bigint[], $2::text[], $3::text[]) AS v(unit_id, body, sha)`,
      [rows.map((r) => r.id), rows.map((r) => bodies.get(r.key) ?? ''), rows.map((r) => sha256Hex(bodies.get(r.key) ?? ''))],
    );
    await appendAudit(client, { actor, kind: 'demo.seed', detail: { units_inserted: rows.length, state: 'draft', version: 1, history: HISTORY_RUN_IDS } });
    return rows.length;
  });
}

/** True when the demo corpus was imported by a seed that replays the history (its demo.seed event names it). */
async function importedWithHistory(pool: Pool): Promise<boolean> {
  const { rowCount } = await pool.query(`SELECT 1 FROM cutter_governance.audit_event WHERE kind = 'demo.seed' AND detail ? 'history' LIMIT 1`);
  return Boolean(rowCount);
}

/**
 * Registers the demo working target (demo/icx-work.target.json) for the demo
 * run, as `cutter target register` would after its checks; idempotent.
 */
export async function registerDemoWorkTarget(pool: Pool, actor: string): Promise<boolean> {
  const t = DEMO_WORK_TARGET;
  const result = await pool.query(
    `INSERT INTO cutter_governance.target_registry (name, corpus, owner, protected, max_units, allowed_transitions, registered_by, notes)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (name) DO NOTHING`,
    [t.name, t.corpus, t.owner, t.protected, t.max_units, t.allowed_transitions, actor, t.notes],
  );
  return Boolean(result.rowCount);
}

export interface CorpusSummaryRow {
  corpus: string;
  state: string;
  units: number;
  versions: number;
}

/** Units and versions per corpus and state. */
export async function corpusSummary(pool: Pool): Promise<CorpusSummaryRow[]> {
  const result = await pool.query<CorpusSummaryRow>(
    `SELECT u.corpus, u.state, count(*)::int AS units,
            (SELECT count(*)::int FROM public.unit_version v JOIN public.information_unit u2 ON u2.id = v.unit_id
              WHERE u2.corpus = u.corpus AND u2.state = u.state) AS versions
       FROM public.information_unit u GROUP BY u.corpus, u.state ORDER BY u.corpus, u.state`,
  );
  return result.rows;
}
