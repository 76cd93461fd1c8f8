import { CutterError } from '../errors.js';
import type { Pool, PoolClient } from '../db/pool.js';

/**
 * A run's proof that nothing else wrote its corpus, read from the record the
 * database keeps of every write to the corpus tables (table corpus_write,
 * appended by the triggers corpus_write_*; docs/proof.md): the writes
 * committed after the run's baseline mark, split into the run's own (the
 * transaction that applied its plan, from the ledger) and everyone else's.
 * It costs what those writes cost to read, whatever the corpus's size.
 */

type Db = Pool | PoolClient;

/** The corpus tables, in the order checks list them. */
export const CORPUS_TABLES = ['public.information_unit', 'public.unit_version', 'public.iu_lifecycle_log'] as const;
export type CorpusTable = (typeof CORPUS_TABLES)[number];

/** Writes of one kind to one table: how many rows, in how many statements, by which logins. */
export interface WriteTally {
  table: string;
  op: 'insert' | 'update' | 'delete' | 'truncate';
  /** Rows written; null for a TRUNCATE (it does not say). */
  rows: number | null;
  statements: number;
  roles: string[];
}

/** Takes the run's baseline mark (once; a retry keeps the first): the server's snapshot, as text. */
export async function markBaseline(db: Db, runId: string): Promise<string> {
  const { rows } = await db.query<{ mark: string }>('SELECT cutter_governance.mark_run_baseline($1) AS mark', [runId]);
  const mark = rows[0]?.mark;
  if (!mark) throw new CutterError('BASELINE_MISSING', `run ${runId}: the baseline mark was not recorded`);
  return mark;
}

const MARK = `
  SELECT m.mark::text AS mark, r.corpus, l.xact::text AS own_xact
    FROM cutter_governance.run_write_mark m
    JOIN cutter_governance.run r ON r.run_id = m.run_id
    LEFT JOIN cutter_governance.execution_ledger l ON l.run_id = m.run_id
   WHERE m.run_id = $1`;

// Transactions below the mark's xmin had all ended when it was taken, so the
// index range starts there; the snapshot test drops those it saw committed.
const SINCE = `
  SELECT w.tbl AS table, w.op, sum(w.rows)::text AS rows, count(*)::int AS statements,
         array_agg(DISTINCT w.by_role ORDER BY w.by_role) AS roles, coalesce(w.xact = $3::xid8, false) AS own
    FROM cutter_governance.corpus_write w
   WHERE (w.corpus = $1 OR w.corpus IS NULL)
     AND w.xact >= pg_snapshot_xmin($2::pg_snapshot)
     AND NOT pg_visible_in_snapshot(w.xact, $2::pg_snapshot)
   GROUP BY w.tbl, w.op, own
   ORDER BY w.tbl, w.op`;

/** Writes to the run's corpus committed after its baseline mark: its own, and everyone else's. */
export async function writesSinceBaseline(db: Db, runId: string): Promise<{ mark: string; own: WriteTally[]; others: WriteTally[] }> {
  const { rows: marks } = await db.query<{ mark: string; corpus: string; own_xact: string | null }>(MARK, [runId]);
  const m = marks[0];
  if (!m) throw new CutterError('BASELINE_MISSING', `run ${runId} has no baseline mark to verify against`);
  const { rows } = await db.query<{ table: string; op: WriteTally['op']; rows: string | null; statements: number; roles: string[]; own: boolean }>(SINCE, [
    m.corpus,
    m.mark,
    m.own_xact,
  ]);
  const tally = (r: (typeof rows)[number]): WriteTally => ({
    table: r.table,
    op: r.op,
    rows: r.rows === null ? null : Number(r.rows),
    statements: r.statements,
    roles: r.roles,
  });
  return { mark: m.mark, own: rows.filter((r) => r.own).map(tally), others: rows.filter((r) => !r.own).map(tally) };
}
