import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CutterError } from '../../shared/errors.js';
import { phasesFor, type Phase } from '../../shared/jobs/catalog.js';
import { getPhases } from '../../shared/runs/store.js';
import { createRunEnv, type RunEnv } from '../support/run-env.js';

let env: RunEnv;
beforeAll(async () => {
  env = await createRunEnv('rundry');
  await env.startFleet();
});
afterAll(async () => {
  await env.close();
});

describe('a dry run', () => {
  it('of the demo snapshot completes every phase with verdict PASS and leaves the corpus byte-for-byte as it was', async () => {
    const before = await env.corpus();
    const runId = await env.enqueue('dry');
    const view = await env.waitForEnd(runId);
    expect(view.status, JSON.stringify(view.error)).toBe('succeeded');
    expect(view.verdict).toBe('PASS');
    expect(view.phases.map((p) => [p.phase, p.state])).toEqual(phasesFor('dry').map((p) => [p, 'completed']));
    expect(view.plan).toMatchObject({ unit_count: 55 });
    expect(await env.corpus()).toEqual(before);

    const verify = await env.db.pool.query<{ passed: boolean; checks: { name: string; passed: boolean }[] }>(
      'SELECT passed, checks FROM cutter_governance.verify_result WHERE run_id = $1',
      [runId],
    );
    expect(verify.rows[0]?.passed).toBe(true);
    expect(verify.rows[0]?.checks.map((c) => c.name)).toContain('public.information_unit: no write since the baseline');
    const execute = view.phases.find((p) => p.phase === 'execute');
    expect(execute?.summary).toMatchObject({ rehearsed: true, rolled_back: true, units_created: 10, versions_written: 15, log_rows: 55 });
    const lock = await env.db.pool.query('SELECT 1 FROM cutter_governance.corpus_lock');
    expect(lock.rowCount).toBe(0);
    const report = await env.db.pool.query<{ report: string }>('SELECT report FROM cutter_governance.run WHERE run_id = $1', [runId]);
    expect(report.rows[0]?.report).toContain('Of corpus ICX-WORK:');
    expect(report.rows[0]?.report).toContain('## Verification (G8)');
    expect(report.rows[0]?.report).toContain('**PASS**');
  });

  it('fails at whichever phase a failure is injected, naming it, and runs no later phase', async () => {
    for (const phase of phasesFor('dry')) {
      await env.startFleet({
        [phase]: () => Promise.reject(new CutterError('INJECTED_FAILURE', `injected failure in ${phase}`)),
      });
      const before = await env.corpus();
      const runId = await env.enqueue('dry');
      const view = await env.waitForEnd(runId);
      expect(view.status).toBe('failed');
      expect(view.failed_phase).toBe(phase);
      expect(view.error?.code).toBe('INJECTED_FAILURE');
      const ran = (await getPhases(env.db.pool, runId)).map((p) => p.phase);
      const order = phasesFor('dry');
      expect(ran.every((p) => order.indexOf(p as Phase) <= order.indexOf(phase))).toBe(true);
      expect(await env.corpus()).toEqual(before);
      const lock = await env.db.pool.query('SELECT 1 FROM cutter_governance.corpus_lock');
      expect(lock.rowCount).toBe(0);
    }
  }, 180_000);
});
