import type pg from 'pg';
import { ident } from './pool.js';

/**
 * The schema where an in-place restore keeps, inside the database it
 * restores into, what the restore must not lose: the execution ledger and
 * the audit chain as they were before it (shared/backup/hold.ts). No backup
 * contains it (pg_dump leaves it out), so `pg_restore --clean` leaves it
 * alone; the restore drops it in the commit that re-asserts what it held.
 * While it exists, a restore into that database did not finish.
 */
export const HOLD_SCHEMA = 'cutter_restore_hold';
/** The schema's name quoted for SQL. */
export const HOLD = ident(HOLD_SCHEMA);

/** What a hold says about the restore that took it. */
export interface RestoreHold {
  /** The backup file the restore that took the hold was given. */
  file: string;
  sha256: string;
  heldAt: Date;
  ledgerRows: number;
  auditRows: number;
}

/** The hold of an unfinished restore in this database, or null. */
export async function readRestoreHold(db: pg.ClientBase | pg.Pool): Promise<RestoreHold | null> {
  const exists = await db.query<{ found: boolean }>(
    `SELECT to_regclass(format('%I.restore', $1::text)) IS NOT NULL AS found`,
    [HOLD_SCHEMA],
  );
  if (!exists.rows[0]?.found) return null;
  const { rows } = await db.query<{ file: string; sha256: string; held_at: Date; ledger_rows: number; audit_rows: number }>(
    `SELECT h.file, h.sha256, h.held_at,
            (SELECT count(*)::int FROM ${HOLD}.execution_ledger) AS ledger_rows,
            (SELECT count(*)::int FROM ${HOLD}.audit_event) AS audit_rows
       FROM ${HOLD}.restore h`,
  );
  const row = rows[0];
  return row ? { file: row.file, sha256: row.sha256, heldAt: row.held_at, ledgerRows: row.ledger_rows, auditRows: row.audit_rows } : null;
}

/** The one line that tells an operator how to finish an interrupted restore. */
export function finishHint(hold: RestoreHold): string {
  return (
    `a restore of ${hold.file} (sha256 ${hold.sha256}) into this database did not finish: the ledger (${hold.ledgerRows} row(s)) ` +
    `and audit chain (${hold.auditRows} row(s)) from before it are held in schema ${HOLD_SCHEMA} since ${hold.heldAt.toISOString()}; ` +
    'run `cutter backup restore FILE --into URL --force` again (the same backup, or another) to finish it'
  );
}
