import type { Pool } from '../shared/db/pool.js';

/** One row of the /runs list. */
export interface RunListRow {
  run_id: string;
  target: string;
  mode: string;
  status: string;
  phase: string | null;
  verdict: string | null;
  created_at: Date;
  finished_at: Date | null;
}

/** A page of the /runs list and the cursor of the next one (null on the last page). */
export interface RunListPage {
  rows: RunListRow[];
  next: string | null;
}

/** Where a page starts: after the run with this creation time (µs since the epoch) and id. */
export interface RunListCursor {
  createdUs: number;
  runId: string;
}

const CURSOR = /^(\d{1,17})~([A-Za-z0-9_-]{8,64})$/;

/** The cursor text of the `next` link, or null when it is not one. */
export function parseRunCursor(text: string): RunListCursor | null {
  const m = CURSOR.exec(text);
  return m?.[1] && m[2] ? { createdUs: Number(m[1]), runId: m[2] } : null;
}

/**
 * Runs newest first, optionally of one status and one target, a page at a
 * time (keyset on creation time and id: a run enqueued meanwhile never
 * shifts a later page). Microseconds, not a JS Date, make the key: runs
 * enqueued within one millisecond must not share a cursor.
 */
export async function listRuns(pool: Pool, args: { status?: string; target?: string; after?: RunListCursor; limit: number }): Promise<RunListPage> {
  const { rows } = await pool.query<RunListRow & { created_us: string }>(
    `SELECT run_id, target, mode, status, phase, verdict, created_at, finished_at,
            (extract(epoch FROM created_at) * 1000000)::bigint::text AS created_us
       FROM cutter_governance.run
      WHERE ($1::text IS NULL OR status = $1)
        AND ($2::text IS NULL OR target = $2)
        AND ($3::bigint IS NULL OR ((extract(epoch FROM created_at) * 1000000)::bigint, run_id) < ($3::bigint, $4::text))
      ORDER BY created_at DESC, run_id DESC
      LIMIT $5`,
    [args.status ?? null, args.target ?? null, args.after?.createdUs ?? null, args.after?.runId ?? null, args.limit + 1],
  );
  const more = rows.length > args.limit;
  const page = rows.slice(0, args.limit);
  const last = page.at(-1);
  return {
    rows: page.map(({ created_us: _us, ...row }) => row),
    next: more && last ? `${last.created_us}~${last.run_id}` : null,
  };
}
