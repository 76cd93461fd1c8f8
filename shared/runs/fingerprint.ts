import { ident, type Pool, type PoolClient } from '../db/pool.js';
import type { CorpusFingerprint } from '../jobs/results.js';

/**
 * Table fingerprints: a row count and a content hash (md5 over the ordered
 * per-row md5 of each row's text form). Two equal fingerprints mean the table
 * holds the same rows, byte for byte.
 */

type Db = Pool | PoolClient;

/** The corpus tables and the key order their hash is taken in. */
export const CORPUS_TABLES = {
  'public.information_unit': 'id',
  'public.unit_version': 'unit_id, version',
  'public.iu_lifecycle_log': 'id',
} as const;

export type CorpusTable = keyof typeof CORPUS_TABLES;

/** Every table of both governed schemas, for the readiness check. */
export async function listGovernedTables(db: Db): Promise<string[]> {
  const result = await db.query<{ name: string }>(
    `SELECT n.nspname || '.' || c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname IN ('public', 'cutter_governance') AND c.relkind IN ('r', 'p') ORDER BY 1`,
  );
  return result.rows.map((r) => r.name);
}

// The statements are fixed text per table (no input reaches them); the
// scoped forms exclude exactly the rows a run is allowed to change.
const FULL: Record<CorpusTable, string> = {
  'public.information_unit': `SELECT count(*)::bigint AS rows, md5(coalesce(string_agg(md5(t::text), '' ORDER BY t.id), '')) AS hash FROM public.information_unit t`,
  'public.unit_version': `SELECT count(*)::bigint AS rows, md5(coalesce(string_agg(md5(t::text), '' ORDER BY t.unit_id, t.version), '')) AS hash FROM public.unit_version t`,
  'public.iu_lifecycle_log': `SELECT count(*)::bigint AS rows, md5(coalesce(string_agg(md5(t::text), '' ORDER BY t.id), '')) AS hash FROM public.iu_lifecycle_log t`,
};

const OUTSIDE_RUN: Record<CorpusTable, string> = {
  'public.information_unit': `SELECT count(*)::bigint AS rows, md5(coalesce(string_agg(md5(t::text), '' ORDER BY t.id), '')) AS hash
      FROM public.information_unit t
     WHERE NOT EXISTS (SELECT 1 FROM cutter_governance.cut_change_item i
                        WHERE i.run_id = $1 AND i.key = t.key AND t.corpus = $2)`,
  'public.unit_version': `SELECT count(*)::bigint AS rows, md5(coalesce(string_agg(md5(t::text), '' ORDER BY t.unit_id, t.version), '')) AS hash
      FROM public.unit_version t WHERE t.created_by_run IS DISTINCT FROM $1 AND $2::text IS NOT NULL`,
  'public.iu_lifecycle_log': `SELECT count(*)::bigint AS rows, md5(coalesce(string_agg(md5(t::text), '' ORDER BY t.id), '')) AS hash
      FROM public.iu_lifecycle_log t WHERE t.run_id IS DISTINCT FROM $1 AND $2::text IS NOT NULL`,
};

const COUNT: Record<CorpusTable, string> = {
  'public.information_unit': 'SELECT count(*)::bigint AS rows FROM public.information_unit',
  'public.unit_version': 'SELECT count(*)::bigint AS rows FROM public.unit_version',
  'public.iu_lifecycle_log': 'SELECT count(*)::bigint AS rows FROM public.iu_lifecycle_log',
};

const TABLES = Object.keys(CORPUS_TABLES) as CorpusTable[];

/**
 * One statement per corpus table, all at once: the tables are independent
 * scans (each statement its own snapshot, as when they ran one after the
 * other), and on a Pool each gets a connection of its own, so PostgreSQL
 * scans them side by side instead of one after another. Results keep the
 * order of CORPUS_TABLES.
 */
function perTable<T>(each: (table: CorpusTable) => Promise<T>): Promise<T[]> {
  return Promise.all(TABLES.map(each));
}

/** Fingerprints of the whole corpus tables. */
export async function fingerprintCorpus(db: Db): Promise<CorpusFingerprint[]> {
  return perTable(async (table) => {
    const { rows } = await db.query<{ rows: number; hash: string }>(FULL[table]);
    return { table, rows: rows[0]?.rows ?? 0, hash: rows[0]?.hash ?? '' };
  });
}

/**
 * Row counts of the corpus tables: what a live run's verify compares with
 * baseline + plan. Its proof that nothing else changed is the fingerprint
 * outside the plan, so it does not hash every row a second time.
 */
export async function countCorpus(db: Db): Promise<{ table: CorpusTable; rows: number }[]> {
  return perTable(async (table) => {
    const { rows } = await db.query<{ rows: number }>(COUNT[table]);
    return { table, rows: rows[0]?.rows ?? 0 };
  });
}

/**
 * Fingerprints of everything a run may not touch: units outside its plan,
 * versions and log rows it did not write. Equal before and after execute
 * means the run changed nothing else.
 */
export async function fingerprintOutsideRun(db: Db, runId: string, corpus: string): Promise<CorpusFingerprint[]> {
  return perTable(async (table) => {
    const { rows } = await db.query<{ rows: number; hash: string }>(OUTSIDE_RUN[table], [runId, corpus]);
    return { table, rows: rows[0]?.rows ?? 0, hash: rows[0]?.hash ?? '' };
  });
}

/**
 * Fingerprint of any governed table by name, for readiness. The name must
 * come from listGovernedTables (the catalog), never from input.
 */
export async function fingerprintTable(db: Db, qualifiedName: string): Promise<CorpusFingerprint> {
  const [schema, name] = qualifiedName.split('.');
  const { rows } = await db.query<{ rows: number; hash: string }>(
    `SELECT count(*)::bigint AS rows, md5(coalesce(string_agg(md5(t::text), '' ORDER BY md5(t::text)), '')) AS hash
       FROM ${ident(schema ?? '')}.${ident(name ?? '')} t`,
  );
  return { table: qualifiedName, rows: rows[0]?.rows ?? 0, hash: rows[0]?.hash ?? '' };
}
