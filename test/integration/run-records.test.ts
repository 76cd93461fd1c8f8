import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { phaseResult } from '../../shared/jobs/results.js';
import { buildReport } from '../../shared/runs/report.js';
import { completePhase, completedResult, getPhases } from '../../shared/runs/store.js';
import { runView } from '../../shared/runs/view.js';
import { createDemoDatabase, type TestDatabase } from '../support/db.js';
import { insertPausedRun } from '../support/paused-run.js';

/**
 * Phase results are written and read through their schemas only: a result
 * its schema refuses is not stored, and a stored record that does not parse
 * (written by hand, or by an older cutter) is named where it is shown, never
 * guessed at or dropped.
 */

let db: TestDatabase;
beforeAll(async () => {
  db = await createDemoDatabase('run_records', 'test');
});
afterAll(async () => {
  await db.drop();
});

const backup = {
  file: '/backups/cutter-x.pgdump.gpg',
  manifest_file: '/backups/cutter-x.pgdump.gpg.manifest.json',
  bytes: 1234,
  sha256: 'a'.repeat(64),
  recipient_fpr: 'B'.repeat(40),
  verified: true,
} as const;

describe('phase results', () => {
  it('are stored through their schema and read back typed', async () => {
    const run = await insertPausedRun(db.pool);
    await db.pool.query(`INSERT INTO cutter_governance.run_phase (run_id, phase, state) VALUES ($1, 'backup', 'active')`, [run.runId]);
    await completePhase(db.pool, run.runId, 'backup', backup);
    expect(completedResult(await getPhases(db.pool, run.runId), 'backup')).toEqual(backup);
    expect(await buildReport(db.pool, run.runId)).toContain(`- sha256: \`${backup.sha256}\``);
  });

  it('refuse a result their schema does not accept, storing nothing', async () => {
    const run = await insertPausedRun(db.pool);
    await db.pool.query(`INSERT INTO cutter_governance.run_phase (run_id, phase, state) VALUES ($1, 'backup', 'active')`, [run.runId]);
    const unverified = { ...backup, verified: false } as unknown as typeof backup;
    await expect(completePhase(db.pool, run.runId, 'backup', unverified)).rejects.toThrow(/verified/);
    expect(completedResult(await getPhases(db.pool, run.runId), 'backup')).toBeNull();
    expect(() => phaseResult('backup', { ...backup, extra: 1 })).toThrow(/extra/);
  });

  it('a stored record that does not parse is named in the report and the run view, and the rest is still shown', async () => {
    const run = await insertPausedRun(db.pool);
    await db.pool.query(
      `INSERT INTO cutter_governance.run_phase (run_id, phase, state, finished_at, summary) VALUES ($1, 'backup', 'completed', now(), '{"file": 1}')`,
      [run.runId],
    );
    const report = await buildReport(db.pool, run.runId);
    expect(report).toMatch(/## Unreadable records\n\n- backup result: /);
    expect(report).toContain('## Backup\n\n- none: its stored record is unreadable (see Unreadable records)');
    expect(report).toContain(`## Plan\n\n- plan_sha256: \`${run.planSha256}\``); // the paused run's cutplan result still reads
    // A section without its record says why instead of dropping out.
    expect(report).toContain('## Execution\n\n- none: the execute phase did not run');
    const view = await runView(db.pool, run.runId);
    expect(view?.phases.find((p) => p.phase === 'backup')?.summary).toEqual({ unreadable: expect.stringMatching(/stored backup record does not match its schema/) as unknown });
    expect(view?.phases.find((p) => p.phase === 'cutplan')?.summary).toMatchObject({ plan_sha256: run.planSha256, unit_count: 0 });
  });
});
