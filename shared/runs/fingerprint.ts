import { ident, type Pool, type PoolClient } from '../db/pool.js';
import type { CorpusFingerprint } from '../jobs/results.js';

/**
 * Table fingerprints: a row count and a content hash (md5 over the ordered
 * per-row md5 of each row's text form). Two equal fingerprints mean the rows
 * they cover (a run's corpus, or a whole table for readiness) are the same,
 * byte for byte.
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

// The statements are fixed text per table (no input reaches them; the
// corpus and run id are parameters). A run's proof covers its own corpus:
// the units with that corpus, and the versions and log rows of those units
// (through unit_id). Other corpora belong to other runs, which the corpus
// lock (C4) keeps out of this one. The OUTSIDE_RUN forms further exclude
// exactly the rows the run is allowed to change.
const CORPUS: Record<CorpusTable, string> = {
  'public.information_unit': `SELECT count(*)::bigint AS rows, md5(coalesce(string_agg(md5(t::text), '' ORDER BY t.id), '')) AS hash
      FROM public.information_unit t WHERE t.corpus = $1`,
  'public.unit_version': `SELECT count(*)::bigint AS rows, md5(coalesce(string_agg(md5(t::text), '' ORDER BY t.unit_id, t.version), '')) AS hash
      FROM public.unit_version t JOIN public.information_unit u ON u.id = t.unit_id WHERE u.corpus = $1`,
  'public.iu_lifecycle_log': `SELECT count(*)::bigint AS rows, md5(coalesce(string_agg(md5(t::text), '' ORDER BY t.id), '')) AS hash
      FROM public.iu_lifecycle_log t JOIN public.information_unit u ON u.id = t.unit_id WHERE u.corpus = $1`,
};

const OUTSIDE_RUN: Record<CorpusTable, string> = {
  'public.information_unit': `SELECT count(*)::bigint AS rows, md5(coalesce(string_agg(md5(t::text), '' ORDER BY t.id), '')) AS hash
      FROM public.information_unit t
     WHERE t.corpus = $1
       AND NOT EXISTS (SELECT 1 FROM cutter_governance.cut_change_item i WHERE i.run_id = $2 AND i.key = t.key)`,
  'public.unit_version': `SELECT count(*)::bigint AS rows, md5(coalesce(string_agg(md5(t::text), '' ORDER BY t.unit_id, t.version), '')) AS hash
      FROM public.unit_version t JOIN public.information_unit u ON u.id = t.unit_id
     WHERE u.corpus = $1 AND t.created_by_run IS DISTINCT FROM $2`,
  'public.iu_lifecycle_log': `SELECT count(*)::bigint AS rows, md5(coalesce(string_agg(md5(t::text), '' ORDER BY t.id), '')) AS hash
      FROM public.iu_lifecycle_log t JOIN public.information_unit u ON u.id = t.unit_id
     WHERE u.corpus = $1 AND t.run_id IS DISTINCT FROM $2`,
};

const COUNT: Record<CorpusTable, string> = {
  'public.information_unit': 'SELECT count(*)::bigint AS rows FROM public.information_unit t WHERE t.corpus = $1',
  'public.unit_version': 'SELECT count(*)::bigint AS rows FROM public.unit_version t JOIN public.information_unit u ON u.id = t.unit_id WHERE u.corpus = $1',
  'public.iu_lifecycle_log': 'SELECT count(*)::bigint AS rows FROM public.iu_lifecycle_log t JOIN public.information_unit u ON u.id = t.unit_id WHERE u.corpus = $1',
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

async function fingerprints(db: Db, statements: Record<CorpusTable, string>, params: string[]): Promise<CorpusFingerprint[]> {
  return perTable(async (table) => {
    const { rows } = await db.query<{ rows: number; hash: string }>(statements[table], params);
    return { table, rows: rows[0]?.rows ?? 0, hash: rows[0]?.hash ?? '' };
  });
}

/** Fingerprints of one corpus: its units, and the versions and log rows of those units. */
export async function fingerprintCorpus(db: Db, corpus: string): Promise<CorpusFingerprint[]> {
  return fingerprints(db, CORPUS, [corpus]);
}

/**
 * Row counts of one corpus, table by table: what a live run's verify
 * compares with baseline + plan. Its proof that nothing else changed is the
 * fingerprint outside the plan, so it does not hash every row a second time.
 */
export async function countCorpus(db: Db, corpus: string): Promise<{ table: CorpusTable; rows: number }[]> {
  return perTable(async (table) => {
    const { rows } = await db.query<{ rows: number }>(COUNT[table], [corpus]);
    return { table, rows: rows[0]?.rows ?? 0 };
  });
}

/**
 * Fingerprints of everything in the run's corpus that the run may not touch:
 * units outside its plan, versions and log rows of the corpus it did not
 * write. Equal before and after execute means nobody changed anything else
 * in the corpus, the run included.
 */
export async function fingerprintOutsideRun(db: Db, runId: string, corpus: string): Promise<CorpusFingerprint[]> {
  return fingerprints(db, OUTSIDE_RUN, [corpus, runId]);
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
