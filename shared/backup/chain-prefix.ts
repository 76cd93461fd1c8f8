import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import type pg from 'pg';
import { HOLD } from '../db/restore-hold.js';
import { decryptInto } from './decrypt.js';
import { BackupRunnerError } from './errors.js';

/**
 * Is a backup's audit chain an earlier state of a database's, or the other
 * way round? Either may be longer (a backup restored in place is older than
 * the chain it replaces; one restored into a copy may be newer); what may not
 * be is a row both have with different hashes. Each hash covers its row and
 * the previous hash, so equal hashes at every common row mean one chain
 * starts with the other, and nothing the longer one holds is contradicted.
 */

/** seq → hash of every audit row in a backup. */
export type ChainRows = Map<number, string>;

const COPY_AUDIT = /^COPY cutter_governance\.audit_event \(([^)]*)\) FROM stdin;$/;
/** The last line pg_restore prints, once it has written every entry asked for. */
const DUMP_COMPLETE = '-- PostgreSQL database dump complete';

/**
 * The backup's audit rows (seq and hash only), read from the dump's own
 * COPY data without restoring anything: pg_restore prints that one table's
 * data as SQL, which is parsed as it streams. A backup without the table
 * (not a cutter database) has none. Memory: ~100 bytes a row.
 */
export async function readBackupChain(file: string, gnupgHome: string | undefined): Promise<ChainRows> {
  const rows: ChainRows = new Map();
  let complete = false;
  const readOutput = async (output: Readable): Promise<void> => {
    let columns: { seq: number; hash: number } | undefined;
    let malformed: string | undefined;
    // Every line is read to the end, even after a fault: an unread pipe would stall pg_restore.
    for await (const line of createInterface({ input: output, crlfDelay: Infinity })) {
      if (line === DUMP_COMPLETE) complete = true;
      if (!columns) {
        const header = COPY_AUDIT.exec(line);
        if (header?.[1]) {
          const names = header[1].split(',').map((c) => c.trim());
          columns = { seq: names.indexOf('seq'), hash: names.indexOf('hash') };
          if (columns.seq < 0 || columns.hash < 0) malformed ??= `audit_event columns ${header[1]}`;
        }
        continue;
      }
      if (line === '\\.') {
        columns = { seq: -1, hash: -1 };
        continue;
      }
      if (columns.seq < 0) continue;
      // COPY text escapes tabs inside values, so a tab always separates columns; seq and hash are plain.
      const fields = line.split('\t');
      const seq = Number(fields[columns.seq]);
      const hash = fields[columns.hash] ?? '';
      if (!Number.isSafeInteger(seq) || !/^[0-9a-f]{64}$/.test(hash)) malformed ??= `audit row line ${line.slice(0, 80)}`;
      else rows.set(seq, hash);
    }
    if (malformed) throw new Error(`unexpected ${malformed}`);
  };
  const outcome = await decryptInto(file, gnupgHome, {
    command: 'pg_restore',
    args: ['--data-only', '--schema', 'cutter_governance', '--table', 'audit_event', '--file', '-'],
    readOutput,
  });
  // pg_restore stops reading once it has printed the last entry it wants, and gpg then
  // fails writing the rest: not a fault here (the file's sha256 was checked before).
  const stoppedEarly = !outcome.ok && outcome.part === 'gpg' && complete && /broken pipe|reset by peer/i.test(outcome.detail);
  if (!outcome.ok && !stoppedEarly) {
    if (outcome.part === 'gpg-missing') throw new BackupRunnerError('GPG_MISSING', 'gpg is not on PATH');
    if (outcome.part === 'consumer-missing') throw new BackupRunnerError('PG_DUMP_MISSING', 'pg_restore is not on PATH');
    throw new BackupRunnerError('BACKUP_VERIFY_READ', `reading the audit chain inside ${file} failed: ${outcome.detail}`);
  }
  return rows;
}

/** Where two chains part, or null when one starts with the other. */
export interface ChainDivergence {
  /** The first row they do not share as the same row. */
  seq: number;
  reason: string;
}

/**
 * Compares a backup's chain with the chain a database holds now (`live`) or
 * held before an unfinished restore (`held`), row by row over the rows both
 * should have.
 */
export async function chainDivergence(client: pg.ClientBase, backup: ChainRows, reference: 'live' | 'held'): Promise<ChainDivergence | null> {
  const table = reference === 'held' ? `${HOLD}.audit_event` : 'cutter_governance.audit_event';
  const ends = await client.query<{ last: number | null }>(`SELECT max(seq) AS last FROM ${table}`);
  const last = Number(ends.rows[0]?.last ?? 0);
  const common = Math.min(last, backup.size);
  for (let seq = 1; seq <= backup.size; seq += 1) {
    if (!backup.has(seq)) return { seq, reason: `the backup's chain has no row ${seq} among its ${backup.size}` };
  }
  const BATCH = 5000;
  for (let from = 0; from < common; from += BATCH) {
    const { rows } = await client.query<{ seq: number; hash: string }>(
      `SELECT seq, hash FROM ${table} WHERE seq > $1 AND seq <= $2 ORDER BY seq`,
      [from, Math.min(from + BATCH, common)],
    );
    let expected = from + 1;
    for (const row of rows) {
      if (row.seq !== expected) return { seq: expected, reason: `the ${reference} chain has no row ${expected}` };
      if (backup.get(row.seq) !== row.hash) return { seq: row.seq, reason: `row ${row.seq} has another hash in the backup than in the ${reference} chain` };
      expected += 1;
    }
    if (expected <= Math.min(from + BATCH, common)) return { seq: expected, reason: `the ${reference} chain has no row ${expected}` };
  }
  return null;
}
