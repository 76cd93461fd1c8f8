import { randomBytes } from 'node:crypto';
import type { Pool } from '../db/pool.js';
import { CutterError } from '../errors.js';
import { SnapshotInvalidError, type SnapshotIssue } from '../snapshot/issues.js';
import { stageSnapshotWith, type StageResult } from '../snapshot/stage.js';
import { statSnapshot } from '../snapshot/source.js';
import { checkC2, checkC3, checkC4, type CriterionResult } from '../targets/criteria.js';
import { requireTarget } from '../targets/registry.js';
import type { PlanSummary } from '../jobs/results.js';
import { buildPlan } from './build.js';

/** What `cutter plan` found: the criteria, the snapshot, the plan, or why there is none. */
export interface PlanPreview {
  target: string;
  corpus: string;
  mode: 'live' | 'dry';
  criteria: CriterionResult[];
  snapshot: StageResult | null;
  plan: PlanSummary | null;
  /** Why there is no plan: a criterion refused it (kind refused) or the snapshot is invalid (bad_input). */
  error: { code: string; message: string; kind: 'refused' | 'bad_input'; issues?: SnapshotIssue[] } | null;
}

/** The stable error code when C2, C3 or C4 refuses a plan (the first failing one names it). */
const INTAKE_CODES: Partial<Record<CriterionResult['id'], string>> = {
  C2: 'C2_EMPTY_CORPUS',
  C3: 'C3_PROTECTED',
  C4: 'C4_CORPUS_LOCKED',
};

/**
 * `cutter plan`: C2–C4, then the snapshot staged (C5) and the plan built (C6)
 * exactly as a run's discover and cutplan would, for a temporary run, all in
 * one transaction that is always rolled back. Nothing is written and nothing
 * is enqueued. C3 is judged for the mode asked: a protected target fails it
 * for `live` and passes it for `dry`.
 */
export async function previewPlan(
  pool: Pool,
  args: { target: string; path: string; mode: 'live' | 'dry'; operator: string; maxErrors?: number },
): Promise<PlanPreview> {
  const target = await requireTarget(pool, args.target);
  await statSnapshot(args.path); // a missing file is bad input before any transaction opens
  const preview: PlanPreview = { target: target.name, corpus: target.corpus, mode: args.mode, criteria: [], snapshot: null, plan: null, error: null };
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    preview.criteria.push(await checkC2(client, target), await checkC3(client, target, args.mode), await checkC4(client, target.corpus));
    const failed = preview.criteria.filter((c) => !c.pass);
    if (failed.length) {
      preview.error = { code: INTAKE_CODES[failed[0]?.id ?? 'C2'] ?? 'CRITERIA_FAILED', message: `refused by ${failed.map((c) => c.id).join(', ')}: ${failed.map((c) => c.reason).join('; ')}`, kind: 'refused' };
      return preview;
    }
    const runId = `plan-preview-${randomBytes(8).toString('hex')}`;
    await client.query(
      `INSERT INTO cutter_governance.run (run_id, target, corpus, mode, operator, snapshot_path) VALUES ($1, $2, $3, $4, $5, $6)`,
      [runId, target.name, target.corpus, args.mode, args.operator, args.path],
    );
    try {
      preview.snapshot = await stageSnapshotWith(client, { runId, corpus: target.corpus, path: args.path, ...(args.maxErrors === undefined ? {} : { maxErrors: args.maxErrors }) });
    } catch (err) {
      if (!(err instanceof SnapshotInvalidError)) throw err;
      preview.criteria.push({ id: 'C5', pass: false, reason: `snapshot invalid: ${err.issues.length}${err.stoppedEarly ? '+' : ''} issue(s), nothing staged` });
      preview.error = { code: err.code, message: err.message, kind: 'bad_input', issues: err.issues };
      return preview;
    }
    const s = preview.snapshot;
    preview.criteria.push({ id: 'C5', pass: true, reason: `snapshot valid: ${s.records} record(s), ${s.bytes} bytes, sha256 ${s.sha256}` });
    try {
      preview.plan = await buildPlan(client, { runId, target });
    } catch (err) {
      if (!(err instanceof CutterError) || err.kind !== 'refused') throw err;
      preview.criteria.push({ id: 'C6', pass: false, reason: err.message.replace(/^C6: /, '') });
      preview.error = { code: err.code, message: err.message, kind: 'refused' };
      return preview;
    }
    const kinds = Object.keys(preview.plan.by_transition);
    preview.criteria.push({
      id: 'C6',
      pass: true,
      reason: `${preview.plan.unit_count} unit(s), within max_units ${target.maxUnits}; ${kinds.length ? `transitions ${kinds.join(', ')} allowed` : 'no transitions'}`,
    });
    return preview;
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
    client.release();
  }
}
