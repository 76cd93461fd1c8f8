import type { Pool, PoolClient } from '../db/pool.js';

/** Keys whose postcondition does not hold in the corpus now (empty when the plan landed exactly): cutter_governance.postcondition_failures. */
export async function findPostconditionFailures(db: Pool | PoolClient, runId: string): Promise<string[]> {
  const { rows } = await db.query<{ keys: string[] }>('SELECT cutter_governance.postcondition_failures($1) AS keys', [runId]);
  return rows[0]?.keys ?? [];
}
