import { isPgError } from '../db/errors.js';
import type { Pool, PoolClient } from '../db/pool.js';
import { CutterError } from '../errors.js';

/**
 * C4: the corpus lock. One row per corpus in cutter_governance.corpus_lock;
 * its primary key is what makes two runs racing for the same corpus end with
 * exactly one holder (INSERT … ON CONFLICT waits for the other inserter and
 * then sees its row).
 */

type Db = Pool | PoolClient;

export interface CorpusLock {
  corpus: string;
  runId: string;
  status: string;
  active: boolean;
  acquiredAt: Date;
}

/** The lock on a corpus and the state of the run holding it, or null. */
export async function findCorpusLock(db: Db, corpus: string): Promise<CorpusLock | null> {
  const result = await db.query<{ corpus: string; run_id: string; status: string; active: boolean; acquired_at: Date }>(
    `SELECT l.corpus, l.run_id, r.status, cutter_governance.run_in_flight(r.status) AS active, l.acquired_at
       FROM cutter_governance.corpus_lock l JOIN cutter_governance.run r ON r.run_id = l.run_id
      WHERE l.corpus = $1`,
    [corpus],
  );
  const row = result.rows[0];
  if (!row) return null;
  return {
    corpus: row.corpus,
    runId: row.run_id,
    status: row.status,
    active: row.active,
    acquiredAt: row.acquired_at,
  };
}

/**
 * Takes the corpus for a run. Idempotent for the run that already holds it;
 * takes over a lock left behind by a finished run; otherwise throws
 * C4_CORPUS_LOCKED naming the holder.
 */
export async function acquireCorpusLock(db: Db, args: { corpus: string; runId: string }): Promise<void> {
  // A few rounds cover the holder releasing or finishing between our statements.
  for (let round = 0; round < 5; round += 1) {
    const inserted = await oneCorpusPerRun(db, args.runId, () =>
      db.query(
        `INSERT INTO cutter_governance.corpus_lock (corpus, run_id) VALUES ($1, $2)
         ON CONFLICT (corpus) DO NOTHING`,
        [args.corpus, args.runId],
      ),
    );
    if (inserted.rowCount === 1) return;
    const lock = await findCorpusLock(db, args.corpus);
    if (!lock) continue; // released meanwhile: try again
    if (lock.runId === args.runId) return;
    if (lock.active) {
      throw new CutterError(
        'C4_CORPUS_LOCKED',
        `corpus ${args.corpus} is held by run ${lock.runId} (${lock.status}, since ${lock.acquiredAt.toISOString()}): wait for it to finish, or cancel it (cutter cancel ${lock.runId} --reason TEXT)`,
        { kind: 'refused' },
      );
    }
    // Stale: the WHERE on the old holder makes the takeover race-safe too.
    const taken = await oneCorpusPerRun(db, args.runId, () =>
      db.query(
        `UPDATE cutter_governance.corpus_lock SET run_id = $3, acquired_at = now()
          WHERE corpus = $1 AND run_id = $2`,
        [args.corpus, lock.runId, args.runId],
      ),
    );
    if (taken.rowCount === 1) return;
  }
  throw new CutterError('C4_CORPUS_LOCKED', `corpus ${args.corpus} changed hands repeatedly while run ${args.runId} tried to take it; try again`, {
    kind: 'refused',
    unrecoverable: false,
  });
}

/** corpus_lock.run_id is unique: a run that already holds another corpus gets a clear refusal. */
async function oneCorpusPerRun<T>(db: Db, runId: string, statement: () => Promise<T>): Promise<T> {
  try {
    return await statement();
  } catch (err) {
    if (!isPgError(err, '23505')) throw err;
    const held = await db.query<{ corpus: string }>('SELECT corpus FROM cutter_governance.corpus_lock WHERE run_id = $1', [runId]);
    throw new CutterError(
      'CORPUS_LOCK_OTHER_CORPUS',
      `run ${runId} already holds corpus ${held.rows[0]?.corpus ?? '(unknown)'}; a run holds one corpus only`,
      { kind: 'refused', cause: err },
    );
  }
}

/** Releases whatever corpus the run holds (nothing when it holds none). */
export async function releaseCorpusLock(db: Db, runId: string): Promise<void> {
  await db.query('DELETE FROM cutter_governance.corpus_lock WHERE run_id = $1', [runId]);
}
