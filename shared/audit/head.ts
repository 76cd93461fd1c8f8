import type pg from 'pg';
import { CutterError } from '../errors.js';

/**
 * The audit chain's head: the seq and hash of its last row. Every row's hash
 * covers the one before it, so a head written down outside PostgreSQL (a run
 * report, a webhook event, a backup manifest) pins every row up to it: a
 * chain cut short before it, or rewritten at or before it and re-linked, no
 * longer holds that row with that hash, though it may still walk intact.
 */
export interface ChainHead {
  seq: number;
  hash: string;
}

/** `SEQ:HASH`, the one written form of a head. */
const HEAD_TEXT = /^([1-9][0-9]{0,15}):([0-9a-f]{64})$/;

/** The line a run report carries its head on (shared/runs/report.ts); `--report` finds it again. */
export const REPORT_HEAD_LABEL = 'audit chain head:';

/** The written form, `SEQ:HASH`. */
export function formatHead(head: ChainHead): string {
  return `${head.seq}:${head.hash}`;
}

/** Parses `SEQ:HASH` (bad input otherwise: AUDIT_HEAD_MALFORMED). */
export function parseHead(text: string): ChainHead {
  const match = HEAD_TEXT.exec(text.trim());
  const seq = Number(match?.[1]);
  if (!match?.[2] || !Number.isSafeInteger(seq)) {
    throw new CutterError(
      'AUDIT_HEAD_MALFORMED',
      `a head is SEQ:HASH (a row number, a colon, 64 lowercase hex), not ${JSON.stringify(text.slice(0, 100))}`,
      { kind: 'bad_input' },
    );
  }
  return { seq, hash: match[2] };
}

/**
 * The head a report names on its `audit chain head:` line, in its markdown
 * or as the board renders it (HTML). A report without one, or naming two
 * different heads, is bad input.
 */
export function headInReport(text: string, from: string): ChainHead {
  const found = new Set<string>();
  const label = new RegExp(`${REPORT_HEAD_LABEL}\\s*([^\\s<]+)`, 'g');
  for (const match of text.matchAll(label)) found.add(match[1] ?? '');
  const [only, ...others] = found;
  if (only === undefined) {
    throw new CutterError('AUDIT_HEAD_NOT_IN_REPORT', `${from} has no "${REPORT_HEAD_LABEL} SEQ:HASH" line (a run report written before heads were recorded has none)`, { kind: 'bad_input' });
  }
  if (others.length) {
    throw new CutterError('AUDIT_HEAD_MALFORMED', `${from} names ${found.size} different audit chain heads; a report names one`, { kind: 'bad_input' });
  }
  return parseHead(only);
}

/**
 * The chain's last row as this client sees it; null for an empty chain.
 * Read in the transaction that appended a row, it is that row or a later
 * one of the same transaction: appends hold the chain's lock until commit
 * (shared/db/functions/audit_chain_row.sql).
 */
export async function readChainHead(db: pg.ClientBase | pg.Pool): Promise<ChainHead | null> {
  const { rows } = await db.query<ChainHead>('SELECT seq, hash FROM cutter_governance.audit_event ORDER BY seq DESC LIMIT 1');
  const row = rows[0];
  return row ? { seq: Number(row.seq), hash: row.hash } : null;
}

/** Whether the chain still holds a head written down earlier, and if not, what it lacks. */
export type HeadCheck =
  | { state: 'present'; chainEndsAt: number }
  /** Row seq is gone: the chain ends before it (its tail was cut), or has a hole there. */
  | { state: 'missing'; chainEndsAt: number }
  /** Row seq is there with another hash: the chain was rewritten at or before it. */
  | { state: 'mismatch'; chainEndsAt: number; actualHash: string };

/** Looks the head's row up in the chain (the stored hash; the walk of verify.ts checks the rows against their hashes). */
export async function checkChainHead(db: pg.ClientBase | pg.Pool, head: ChainHead): Promise<HeadCheck> {
  const { rows } = await db.query<{ hash: string | null; last: number | null }>(
    `SELECT (SELECT hash FROM cutter_governance.audit_event WHERE seq = $1) AS hash,
            (SELECT max(seq) FROM cutter_governance.audit_event) AS last`,
    [head.seq],
  );
  const chainEndsAt = Number(rows[0]?.last ?? 0);
  const hash = rows[0]?.hash ?? null;
  if (hash === null) return { state: 'missing', chainEndsAt };
  if (hash !== head.hash) return { state: 'mismatch', chainEndsAt, actualHash: hash };
  return { state: 'present', chainEndsAt };
}

/** What a failed check says: the rows missing, or the row rewritten. */
export function headProblem(head: ChainHead, check: HeadCheck): string | null {
  const written = formatHead(head);
  if (check.state === 'missing') {
    if (check.chainEndsAt < head.seq) {
      const rows = check.chainEndsAt + 1 === head.seq ? `row ${head.seq} is missing` : `rows ${check.chainEndsAt + 1}..${head.seq} are missing`;
      return `the audit chain no longer contains head ${written}: the chain ends at row ${check.chainEndsAt}; ${rows} (its tail was cut, as a restore of an older backup would)`;
    }
    return `the audit chain no longer contains head ${written}: row ${head.seq} is missing (the chain ends at row ${check.chainEndsAt})`;
  }
  if (check.state === 'mismatch') {
    return `the audit chain no longer contains head ${written}: row ${head.seq} has hash ${check.actualHash}; the chain was rewritten at or before row ${head.seq}`;
  }
  return null;
}
