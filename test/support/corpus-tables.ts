import type { Pool, PoolClient } from '../../shared/db/pool.js';
import type { CorpusFingerprint } from '../../shared/jobs/results.js';
import { CORPUS_TABLES, fingerprintTable } from '../../shared/runs/fingerprint.js';

/**
 * The corpus tables fingerprinted whole, every corpus at once: for tests
 * that assert nothing changed anywhere, which is more than a run's own
 * proof (its corpus, shared/runs/fingerprint.ts) and what a test that runs
 * one corpus at a time can ask.
 */
export function fingerprintCorpusTables(db: Pool | PoolClient): Promise<CorpusFingerprint[]> {
  return Promise.all(Object.keys(CORPUS_TABLES).map((table) => fingerprintTable(db, table)));
}
