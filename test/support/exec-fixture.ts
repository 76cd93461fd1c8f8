import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildPlan } from '../../shared/plan/build.js';
import { claimPhase } from '../../shared/runs/store.js';
import { stageSnapshot } from '../../shared/snapshot/stage.js';
import { getTarget } from '../../shared/targets/registry.js';
import type { PhaseDeps } from '../../workers/context.js';
import { executeWorker } from '../../workers/execute/process.js';
import type { TestDatabase } from './db.js';
import { insertRunRow, insertTargetRow, ndjson, recordBackupTaken, seedUnits, type UnitSpec } from './plan-fixtures.js';
import { insertConsumedApprovals, type TestKey } from './sovereign.js';

/**
 * Runs planned and applied through the real stage, plan and execute code,
 * without workers or Redis: each run on a corpus of its own seeded with the
 * units below, its snapshot making every op.
 */

export interface ExecFixtureContext {
  db: TestDatabase;
  /** Where the snapshots are written. */
  dir: string;
  deps: PhaseDeps;
  /** The sovereign key the approvals are made with (trusted in deps.cfg). */
  key: TestKey;
}
/** Four units and a snapshot that makes every op: transition, revise, revise+transition, create. */
const UNITS: UnitSpec[] = [
  { key: 'a', state: 'draft', body: 'a v1' },
  { key: 'b', state: 'draft', body: 'b v1' },
  { key: 'c', state: 'draft', body: 'c v1', version: 2 },
  { key: 'd', state: 'enacted', body: 'd v1' },
];
const SNAPSHOT = [
  { key: 'a', state: 'enacted', body: 'a v1' },
  { key: 'b', state: 'draft', body: 'b v2' },
  { key: 'c', state: 'enacted', body: 'c v3' },
  { key: 'd', state: 'enacted', body: 'd v1' },
  { key: 'n', state: 'draft', body: 'n v1' },
];

export interface PlannedRun {
  runId: string;
  corpus: string;
  /** The key of one of the units above in this run's corpus. */
  k: (s: string) => string;
}

/** The fixture's three steps; `context` is read when a step runs (after the test file's beforeAll). */
export function execFixture(context: () => ExecFixtureContext): {
  plannedRun: (mode: 'dry' | 'live') => Promise<PlannedRun>;
  approve: (runId: string) => Promise<void>;
  execute: (runId: string) => Promise<{ result?: Record<string, unknown>; code?: string; message?: string }>;
} {
  let runs = 0;

  /** A corpus of its own with the units above, planned for a run that is running. */
  async function plannedRun(mode: 'dry' | 'live'): Promise<PlannedRun> {
    const { db, dir } = context();
    runs += 1;
    const corpus = `EX${runs}`;
    const k = (s: string) => `${corpus}/${s}`;
    await seedUnits(db.pool, corpus, UNITS.map((u) => ({ ...u, key: k(u.key) })));
    await insertTargetRow(db.pool, { name: `ex${runs}`, corpus });
    const runId = `run-exec-${String(runs).padStart(4, '0')}`;
    await insertRunRow(db.pool, { runId, target: `ex${runs}`, corpus, mode });
    const path = join(dir, `${runId}.ndjson`);
    writeFileSync(path, ndjson(SNAPSHOT.map((r) => ({ ...r, key: k(r.key) }))));
    await stageSnapshot(db.pool, { runId, corpus, path });
    const target = await getTarget(db.pool, `ex${runs}`);
    if (!target) throw new Error('no target');
    const client = await db.pool.connect();
    try {
      await buildPlan(client, { runId, target });
    } finally {
      client.release();
    }
    return { runId, corpus, k };
  }

  /** What a gate that opened leaves behind: consumed approvals of the frozen hash, the switch on for the run. */
  async function approve(runId: string): Promise<void> {
    const { db, key } = context();
    await insertConsumedApprovals(db.pool, runId, key);
    await db.pool.query(
      `UPDATE cutter_governance.execution_switch SET enabled = true, run_id = $1, expires_at = now() + interval '1 hour', changed_by = 'test'`,
      [runId],
    );
  }

  /** Claims execute for the run and runs its processor, as a worker would; resolves with its result or its error code and message. */
  async function execute(runId: string): Promise<{ result?: Record<string, unknown>; code?: string; message?: string }> {
    const { db, deps } = context();
    await recordBackupTaken(db.pool, runId);
    const run = (await claimPhase(db.pool, runId, 'execute'))?.run;
    if (!run) throw new Error(`no run ${runId}`);
    try {
      return { result: await executeWorker.process({ run, reads: null, job: {} as never, progress: () => Promise.resolve() }, deps) };
    } catch (err) {
      return { code: (err as { code?: string }).code ?? 'INTERNAL', message: (err as Error).message };
    }
  }

  return { plannedRun, approve, execute };
}
