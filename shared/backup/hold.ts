import type pg from 'pg';
import { ident } from '../db/pool.js';
import { HOLD, HOLD_SCHEMA, readRestoreHold, type RestoreHold } from '../db/restore-hold.js';
import { APP_ROLE } from '../grants/matrix.js';

/**
 * The hold of an in-place restore (shared/db/restore-hold.ts): before
 * pg_restore replaces the governance tables, the execution ledger and the
 * audit chain are copied aside inside the same database, where `pg_restore
 * --clean` does not reach. The re-assert (reassert.ts) puts back from it
 * what the backup lacks and drops it in the same commit.
 *
 * A hold left by a restore that did not finish is never replaced: it is the
 * state from before that restore, and the database may since hold the
 * backup's older one. It only grows: ledger rows written since are added
 * (the ledger is a set of facts), and audit rows appended since are added
 * when the chain still extends the held one (no restore committed between).
 */

/** Whether the database holds the governance tables a hold copies. */
export async function isGoverned(client: pg.ClientBase): Promise<boolean> {
  const { rows } = await client.query<{ found: boolean }>(
    `SELECT to_regclass('cutter_governance.execution_ledger') IS NOT NULL
        AND to_regclass('cutter_governance.audit_event') IS NOT NULL AS found`,
  );
  return rows[0]?.found === true;
}

/** Takes the hold (or adds to the one an unfinished restore left) in one transaction; says whether it is new. */
export async function takeHold(client: pg.ClientBase, backup: { file: string; sha256: string }): Promise<{ created: boolean; hold: RestoreHold }> {
  await client.query('BEGIN');
  try {
    // The lock every audit append takes (audit_chain_row.sql): the chain copied is one chain, not half of an append.
    await client.query(`SELECT pg_advisory_xact_lock(hashtext('cutter_governance.audit_event')::bigint)`);
    const created = (await readRestoreHold(client)) === null;
    if (created) {
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${HOLD}`);
      await client.query(
        `CREATE TABLE ${HOLD}.restore (file text NOT NULL, sha256 text NOT NULL, held_at timestamptz NOT NULL DEFAULT now())`,
      );
      await client.query(`INSERT INTO ${HOLD}.restore (file, sha256) VALUES ($1, $2)`, [backup.file, backup.sha256]);
      await client.query(
        `CREATE TABLE ${HOLD}.execution_ledger (
           run_id text PRIMARY KEY, plan_sha256 text NOT NULL, unit_count integer NOT NULL, applied_at timestamptz NOT NULL)`,
      );
      await client.query(
        `CREATE TABLE ${HOLD}.audit_event (
           seq bigint PRIMARY KEY, at timestamptz NOT NULL, actor text NOT NULL, kind text NOT NULL, run_id text,
           detail jsonb NOT NULL, prev_hash text NOT NULL, hash text NOT NULL)`,
      );
      // `cutter audit verify`, run as the application's role, must see that a restore did not finish.
      if ((await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [APP_ROLE])).rowCount) {
        await client.query(`GRANT USAGE ON SCHEMA ${HOLD} TO ${ident(APP_ROLE)}`);
        await client.query(`GRANT SELECT ON ALL TABLES IN SCHEMA ${HOLD} TO ${ident(APP_ROLE)}`);
      }
    }
    await client.query(
      `INSERT INTO ${HOLD}.execution_ledger (run_id, plan_sha256, unit_count, applied_at)
       SELECT run_id, plan_sha256, unit_count, applied_at FROM cutter_governance.execution_ledger
       ON CONFLICT (run_id) DO NOTHING`,
    );
    // Rows past the held chain's end, only while the live chain still runs through it.
    await client.query(
      `WITH held_end AS (SELECT coalesce(max(seq), 0) AS seq FROM ${HOLD}.audit_event)
       INSERT INTO ${HOLD}.audit_event (seq, at, actor, kind, run_id, detail, prev_hash, hash)
       SELECT e.seq, e.at, e.actor, e.kind, e.run_id, e.detail, e.prev_hash, e.hash
         FROM cutter_governance.audit_event e, held_end
        WHERE e.seq > held_end.seq
          AND (held_end.seq = 0 OR EXISTS (
                SELECT 1 FROM cutter_governance.audit_event l JOIN ${HOLD}.audit_event h USING (seq)
                 WHERE l.seq = held_end.seq AND l.hash = h.hash))`,
    );
    const hold = await readRestoreHold(client);
    if (!hold) throw new Error(`the hold in ${HOLD_SCHEMA} vanished while it was taken`);
    await client.query('COMMIT');
    return { created, hold };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/** Drops the hold (inside the caller's transaction, or alone when nothing was restored). */
export async function dropHold(client: pg.ClientBase): Promise<void> {
  await client.query(`DROP SCHEMA IF EXISTS ${HOLD} CASCADE`);
}
