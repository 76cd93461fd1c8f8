import pg from 'pg';
import { config } from '../../shared/config.js';
import { createPool } from '../../shared/db/pool.js';
import { migrate } from '../../shared/deploy/migrate.js';
import { BENCH_CORPUS, seedBenchCorpus } from '../figures/snapshot-data.js';
import { settleServer } from '../figures/seed.js';

/**
 * The database of a live bench: migrated, a corpus of draft units seeded
 * set-based (seedBenchCorpus, nothing crosses the network) and one target
 * over it.
 */

export interface BenchTarget {
  name: string;
  /** The target's max_units: the plan's size. */
  maxUnits: number;
  allowedTransitions: readonly string[];
  notes: string;
}

/** Migrates url, seeds `corpus` draft units of the bench corpus and registers the target. */
export async function seedLiveBenchDatabase(url: string, corpus: number, target: BenchTarget): Promise<void> {
  await migrate(url, { execRole: config().CUTTER_EXEC_ROLE });
  const pool = createPool(url);
  try {
    await seedBenchCorpus(pool, corpus);
    await pool.query(
      `INSERT INTO cutter_governance.target_registry (name, corpus, owner, protected, max_units, allowed_transitions, registered_by, notes)
       VALUES ($1, $2, 'bench', false, $3, $4::text[], 'bench', $5)`,
      [target.name, BENCH_CORPUS, target.maxUnits, target.allowedTransitions, target.notes],
    );
  } finally {
    await pool.end();
  }
}

/**
 * Brings a freshly seeded corpus to the state of one that has been in
 * service: VACUUM ANALYZE (hint bits set, visibility map written, so neither
 * the first reader, floor or cutter, pays for the seed's writes, and no
 * autovacuum starts in the middle of a measurement), then a checkpoint.
 */
export async function settleCorpus(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('VACUUM (ANALYZE) public.information_unit, public.unit_version, public.iu_lifecycle_log');
  } finally {
    await client.end();
  }
  await settleServer();
}
