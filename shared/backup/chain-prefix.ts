import type pg from 'pg';

/**
 * Is a backup's audit chain an earlier state of a database's, or the other
 * way round? Either may be longer (a backup restored in place is usually
 * older than the chain it meets); what may not be is a row both have with
 * different hashes. Each hash covers its row and the previous hash, so equal
 * hashes at every common row mean one chain starts with the other: the
 * backup comes from this database's own history.
 */

/** seq → hash of every audit row. */
export type ChainRows = Map<number, string>;

/** Where two chains part, or null when one starts with the other. */
export interface ChainDivergence {
  /** The first row they do not share as the same row. */
  seq: number;
  reason: string;
}

const BATCH = 5000;

/** The chain a database holds (seq and hash only; ~100 bytes a row), e.g. a backup restored into a scratch database. */
export async function readChain(client: pg.ClientBase): Promise<ChainRows> {
  const rows: ChainRows = new Map();
  let after = 0;
  for (;;) {
    const batch = await client.query<{ seq: string; hash: string }>(
      'SELECT seq::text, hash FROM cutter_governance.audit_event WHERE seq > $1 ORDER BY seq LIMIT $2',
      [after, BATCH],
    );
    for (const row of batch.rows) {
      after = Number(row.seq);
      rows.set(after, row.hash);
    }
    if (batch.rows.length < BATCH) return rows;
  }
}

/** Compares a backup's chain with the chain a database holds, row by row over the rows both should have. */
export async function chainDivergence(client: pg.ClientBase, backup: ChainRows): Promise<ChainDivergence | null> {
  const ends = await client.query<{ last: number | null }>('SELECT max(seq) AS last FROM cutter_governance.audit_event');
  const last = Number(ends.rows[0]?.last ?? 0);
  const common = Math.min(last, backup.size);
  for (let seq = 1; seq <= backup.size; seq += 1) {
    if (!backup.has(seq)) return { seq, reason: `the backup's chain has no row ${seq} among its ${backup.size}` };
  }
  for (let from = 0; from < common; from += BATCH) {
    const { rows } = await client.query<{ seq: number; hash: string }>(
      'SELECT seq, hash FROM cutter_governance.audit_event WHERE seq > $1 AND seq <= $2 ORDER BY seq',
      [from, Math.min(from + BATCH, common)],
    );
    let expected = from + 1;
    for (const row of rows) {
      if (row.seq !== expected) return { seq: expected, reason: `the database's chain has no row ${expected}` };
      if (backup.get(row.seq) !== row.hash) return { seq: row.seq, reason: `row ${row.seq} has another hash in the backup than in the database` };
      expected += 1;
    }
    if (expected <= Math.min(from + BATCH, common)) return { seq: expected, reason: `the database's chain has no row ${expected}` };
  }
  return null;
}
