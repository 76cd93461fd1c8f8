import { createReadStream } from 'node:fs';
import type { PoolClient } from '../db/pool.js';
import type { PlanSummary } from '../jobs/results.js';
import { SnapshotReader } from '../snapshot/reader.js';
import type { SnapshotRecord } from '../snapshot/record.js';
import { sha256Hex } from '../snapshot/stage.js';

/**
 * What the plan of a snapshot would be, computed read-only. The planner
 * (shared/plan/build.ts) stages the snapshot and inserts the change set,
 * which a read-only check may not do; this walks the file once and looks
 * each batch of keys up in the corpus instead, applying the planner's rules:
 * a record equal to its unit (same state, same body hash) is no change; a
 * unit absent from the snapshot is left alone; creating a unit retired,
 * leaving or revising a retired one, and enacted->draft are forbidden.
 * There is no plan_sha256: the hash exists only for a frozen change set.
 */

export interface PlanScopePreview {
  counts: Omit<PlanSummary, 'plan_sha256'>;
  /** Forbidden moves, first 20 by file order, and how many there are. */
  forbidden: { key: string; move: string }[];
  forbiddenTotal: number;
}

const BATCH = 5000;

interface CorpusRow {
  key: string;
  state: string;
  body_sha256: string | null;
}

/** Diffs a (valid) snapshot against the corpus on a read-only client. */
export async function previewPlanScope(client: PoolClient, path: string, corpus: string): Promise<PlanScopePreview> {
  const byOp = new Map<string, number>();
  const byTransition = new Map<string, number>();
  const add = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
  const forbidden: PlanScopePreview['forbidden'] = [];
  let forbiddenTotal = 0;
  let units = 0;
  let batch: SnapshotRecord[] = [];

  const judge = (r: SnapshotRecord, pre: CorpusRow | undefined) => {
    const postSha = sha256Hex(r.body);
    if (!pre) {
      if (r.state === 'retired') return forbid(r.key, 'new->retired');
      units += 1;
      add(byOp, 'create');
      add(byTransition, `new->${r.state}`);
      return;
    }
    const moved = pre.state !== r.state;
    const revised = pre.body_sha256 !== postSha;
    if (!moved && !revised) return;
    if (pre.state === 'retired') return forbid(r.key, moved ? `retired->${r.state}` : 'retired (revise)');
    if (pre.state === 'enacted' && r.state === 'draft') return forbid(r.key, 'enacted->draft');
    units += 1;
    add(byOp, moved && revised ? 'revise+transition' : moved ? 'transition' : 'revise');
    if (moved) add(byTransition, `${pre.state}->${r.state}`);
    if (revised) add(byTransition, 'revise');
  };
  const forbid = (key: string, move: string) => {
    forbiddenTotal += 1;
    if (forbidden.length < 20) forbidden.push({ key, move });
  };
  const flush = async () => {
    if (batch.length === 0) return;
    const records = batch;
    batch = [];
    const { rows } = await client.query<CorpusRow>(
      `SELECT u.key, u.state, v.body_sha256
         FROM public.information_unit u
         LEFT JOIN public.unit_version v ON v.unit_id = u.id AND v.version = u.current_version
        WHERE u.corpus = $1 AND u.key = ANY($2::text[])`,
      [corpus, records.map((r) => r.key)],
    );
    const found = new Map(rows.map((r) => [r.key, r]));
    for (const r of records) judge(r, found.get(r.key));
  };

  const reader = new SnapshotReader({ corpus, maxErrors: 1, onRecord: (record) => batch.push(record) });
  for await (const chunk of createReadStream(path, { highWaterMark: 64 * 1024 })) {
    reader.push(chunk as Buffer);
    if (reader.issues.length > 0) break;
    if (batch.length >= BATCH) await flush();
  }
  if (reader.issues.length > 0) throw new Error(`snapshot ${path} changed while it was being read; check again`);
  reader.end();
  await flush();
  const sorted = (m: Map<string, number>) => Object.fromEntries([...m].sort(([a], [b]) => (a < b ? -1 : 1)));
  return { counts: { unit_count: units, by_op: sorted(byOp), by_transition: sorted(byTransition) }, forbidden, forbiddenTotal };
}
