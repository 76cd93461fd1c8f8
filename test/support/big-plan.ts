import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { withTransaction, type Pool } from '../../shared/db/pool.js';
import { phaseResult } from '../../shared/jobs/results.js';
import { buildPlan } from '../../shared/plan/build.js';
import { newRunId } from '../../shared/runs/store.js';
import { stageSnapshot } from '../../shared/snapshot/stage.js';
import { getTarget } from '../../shared/targets/registry.js';
import { insertTargetRow } from './plan-fixtures.js';

/**
 * A live run paused at SG_1 with a plan of exactly n items, built by the
 * real discover + cutplan code (stageSnapshot, buildPlan) from a snapshot
 * against a corpus seeded server-side: 70% of the items change existing
 * draft units (in turn: enacted, a new body, both), 30% create units.
 * Bodies have several lines, so a diff shows context.
 */

export interface BigPlan {
  runId: string;
  target: string;
  corpus: string;
  planSha256: string;
  unitCount: number;
}

const pad = (i: number) => String(i).padStart(6, '0');
const body = (key: string, version: number) => `${key}\nThe unit's purpose, unchanged.\nIts rule, as of version ${version}.\nA closing line.\n`;

export async function plannedRun(pool: Pool, args: { n: number; corpus: string; target: string; file: string }): Promise<BigPlan> {
  const { n, corpus, target } = args;
  const existing = Math.round(n * 0.7);
  await pool.query(
    `INSERT INTO public.information_unit (corpus, key, state, current_version)
     SELECT $1, $1 || '/' || lpad(g::text, 6, '0'), 'draft', 1 FROM generate_series(1, $2::int) g`,
    [corpus, existing],
  );
  await pool.query(
    `INSERT INTO public.unit_version (unit_id, version, body, body_sha256)
     SELECT u.id, 1, b.body, encode(sha256(convert_to(b.body, 'UTF8')), 'hex')
       FROM public.information_unit u
      CROSS JOIN LATERAL (SELECT u.key || E'\\nThe unit''s purpose, unchanged.\\nIts rule, as of version 1.\\nA closing line.\\n' AS body) b
      WHERE u.corpus = $1`,
    [corpus],
  );
  await insertTargetRow(pool, { name: target, corpus, maxUnits: n });
  const out = createWriteStream(args.file);
  for (let i = 1; i <= n; i += 1) {
    const key = `${corpus}/${pad(i)}`;
    const kind = i % 3;
    const record = i > existing ? { key, state: 'draft', body: body(key, 1) } : { key, state: kind === 1 ? 'draft' : 'enacted', body: body(key, kind === 0 ? 1 : 2) };
    if (!out.write(`${JSON.stringify(record)}\n`)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  const runId = newRunId();
  await pool.query(
    `INSERT INTO cutter_governance.run (run_id, target, corpus, mode, operator, approval_window_s, status) VALUES ($1, $2, $3, 'live', 'test-operator', 3600, 'running')`,
    [runId, target, corpus],
  );
  await stageSnapshot(pool, { runId, corpus, path: args.file });
  const registered = await getTarget(pool, target);
  if (!registered) throw new Error(`no target ${target}`);
  const plan = await withTransaction(pool, (client) => buildPlan(client, { runId, target: registered }));
  await pool.query(`UPDATE cutter_governance.run SET status = 'awaiting_approval' WHERE run_id = $1`, [runId]);
  await pool.query(`INSERT INTO cutter_governance.run_phase (run_id, phase, state, finished_at, summary) VALUES ($1, 'cutplan', 'completed', now(), $2)`, [
    runId,
    JSON.stringify(phaseResult('cutplan', plan)),
  ]);
  return { runId, target, corpus, planSha256: plan.plan_sha256, unitCount: plan.unit_count };
}
