import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { createRunEnv, DEMO_SNAPSHOT, type RunEnv } from '../support/run-env.js';

let env: RunEnv;
beforeAll(async () => {
  env = await createRunEnv('runcli');
  await env.startFleet();
});
afterAll(async () => {
  await env.close();
});

describe('cutter run and cutter status', () => {
  it('a dry run follows every phase to the end and prints the run object with the DESIGN §4 keys', async () => {
    const result = await runCli(['run', '--target', 'icx-work', '--snapshot', DEMO_SNAPSHOT, '--mode', 'dry', '--json'], env.env);
    expect(result.code, result.stderr).toBe(0);
    const run = JSON.parse(result.stdout) as Record<string, unknown> & { plan: Record<string, unknown>; run_id: string };
    expect(run).toMatchObject({ target: 'icx-work', mode: 'dry', status: 'succeeded', verdict: 'PASS', phase: 'verify' });
    expect(Object.keys(run.plan).sort()).toEqual(['by_op', 'by_transition', 'plan_sha256', 'unit_count']);
    expect(run.plan['unit_count']).toBe(55);
    expect(result.stderr).toMatch(/✓ execute/);

    const status = await runCli(['status', run.run_id, '--json'], env.env);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ run_id: run.run_id, status: 'succeeded' });
    const report = await runCli(['status', run.run_id, '--report'], env.env);
    expect(report.stdout).toContain(`# Run ${run.run_id}`);
  });

  it('a live run stops following at the SG_1 pause and says what to sign', async () => {
    const result = await runCli(['run', '--target', 'icx-work', '--snapshot', DEMO_SNAPSHOT, '--mode', 'live', '--approval-window', '30s'], env.env);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/paused at SG_1, awaiting approval/);
    expect(result.stdout).toMatch(/plan_sha256: [0-9a-f]{64}/);
    expect(result.stdout).toMatch(/cutter approval sign --gate SG_1 --run run-/);
    const runId = /run (run-[0-9a-z-]+) is paused/.exec(result.stdout)?.[1] ?? '';
    const ended = await env.waitForEnd(runId, 60_000);
    expect(ended.status).toBe('expired');
  }, 90_000);

  it('refuses bad input with exit 2 and an unknown run with exit 2', async () => {
    const badMode = await runCli(['run', '--target', 'icx-work', '--snapshot', DEMO_SNAPSHOT, '--mode', 'wet'], env.env);
    expect(badMode.code).toBe(2);
    expect(badMode.stderr).toMatch(/'wet' is invalid\. Allowed choices are dry, live/);
    const noFile = await runCli(['run', '--target', 'icx-work', '--snapshot', '/nonexistent.ndjson', '--mode', 'dry'], env.env);
    expect(noFile.code).toBe(2);
    const noTarget = await runCli(['run', '--target', 'nope', '--snapshot', DEMO_SNAPSHOT, '--mode', 'dry'], env.env);
    expect(noTarget.code).toBe(2);
    const unknown = await runCli(['status', 'run-00000000-000000-000000', '--json'], env.env);
    expect(unknown.code).toBe(2);
  });

  it('refuses a live run of the protected target icx-const (C3) with exit 1', async () => {
    const result = await runCli(['run', '--target', 'icx-const', '--snapshot', DEMO_SNAPSHOT, '--mode', 'live'], env.env);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/C3/);
  });
});
