import type { Pool, PoolClient } from '../../shared/db/pool.js';
import type { CorpusFingerprint } from '../../shared/jobs/results.js';
import { fingerprintTable } from '../../shared/runs/fingerprint.js';
import { CORPUS_TABLES } from '../../shared/runs/writes.js';

/**
 * The corpus tables fingerprinted whole, every corpus at once: for tests
 * that assert nothing changed anywhere, which is more than a run's own
 * proof (its corpus) and what a test that runs one corpus at a time can ask.
 */
export function fingerprintCorpusTables(db: Pool | PoolClient): Promise<CorpusFingerprint[]> {
  return Promise.all(CORPUS_TABLES.map((table) => fingerprintTable(db, table)));
}

// One corpus's rows of each table: its units, and the versions and log rows of those units.
const OF_CORPUS = {
  'public.information_unit': 'SELECT t.* FROM public.information_unit t WHERE t.corpus = $1',
  'public.unit_version': 'SELECT t.* FROM public.unit_version t JOIN public.information_unit u ON u.id = t.unit_id WHERE u.corpus = $1',
  'public.iu_lifecycle_log': 'SELECT t.* FROM public.iu_lifecycle_log t JOIN public.information_unit u ON u.id = t.unit_id WHERE u.corpus = $1',
} as const;

/** One corpus fingerprinted (row count and md5 of its rows in text form, in order), for tests that compare a corpus before and after. */
export async function fingerprintCorpus(db: Pool | PoolClient, corpus: string): Promise<CorpusFingerprint[]> {
  return Promise.all(
    CORPUS_TABLES.map(async (table) => {
      const { rows } = await db.query<{ rows: number; hash: string }>(
        `SELECT count(*)::int AS rows, md5(coalesce(string_agg(md5(t::text), '' ORDER BY md5(t::text)), '')) AS hash FROM (${OF_CORPUS[table]}) t`,
        [corpus],
      );
      return { table, rows: rows[0]?.rows ?? 0, hash: rows[0]?.hash ?? '' };
    }),
  );
}
