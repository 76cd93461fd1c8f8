import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBoardServer, type BoardServer } from '../../board/server.js';
import { CutterError } from '../../shared/errors.js';
import type { RunView } from '../../shared/runs/view.js';
import { ALLOWANCE_KINDS, inverseTransition } from '../../shared/units/lifecycle.js';
import { runCli, type CliResult } from '../support/cli.js';
import { createRunEnv, DEMO_SNAPSHOT, type RunEnv } from '../support/run-env.js';
import { approvalFor, postApproval, waitForGate } from '../support/sovereign.js';

/**
 * `cutter revert` on the real services: a live cut of creations, revisions
 * and transitions, undone by a live revert that the independent test signer
 * approves over HTTP, undone again by the revert of the revert; a unit
 * changed by a later run refuses the revert, and --skip-drifted leaves it
 * out; a dry or failed run cannot be reverted. Each step is checked as an
 * operator would: each unit's state and body hash, the version and log rows,
 * the run object, the report and `cutter audit verify`.
 */

const TARGET = 'icx-undo';
const key = (n: number) => `ICX-WORK/${String(n).padStart(3, '0')}`;
const seedBody = (k: string) => `${k}: demo information unit, text of version 1.`;

/** The cut: every kind of item a plan has. */
const CUT = [
  ...[1, 2, 3, 4, 5, 6].map((n) => ({ key: key(n), state: 'enacted', body: seedBody(key(n)) })), // draft->enacted
  ...[7, 8, 9].map((n) => ({ key: key(n), state: 'draft', body: `${key(n)}: revised by the cut.` })), // revise
  ...[10, 11].map((n) => ({ key: key(n), state: 'enacted', body: `${key(n)}: revised and enacted by the cut.` })), // revise+transition
  ...[12, 13].map((n) => ({ key: key(n), state: 'retired', body: seedBody(key(n)) })), // draft->retired
  ...[201, 202, 203].map((n) => ({ key: key(n), state: 'draft', body: `${key(n)}: new draft.` })), // new->draft
  ...[204].map((n) => ({ key: key(n), state: 'enacted', body: `${key(n)}: new and enacted.` })), // new->enacted
];
const CUT_KEYS = CUT.map((r) => r.key);
const REVISED = 5;
const CREATED = [key(201), key(202), key(203), key(204)];

let env: RunEnv;
let board: BoardServer;
let cliEnv: Record<string, string>;

beforeAll(async () => {
  env = await createRunEnv('revert');
  await env.db.pool.query(
    `INSERT INTO cutter_governance.target_registry (name, corpus, owner, protected, max_units, allowed_transitions, registered_by, notes)
     VALUES ($1, 'ICX-WORK', 'ops-team', false, 100,
             ARRAY['new->draft', 'new->enacted', 'draft->enacted', 'draft->retired', 'enacted->retired', 'revise'], 'tester', 'revert test')`,
    [TARGET],
  );
  await env.startFleet();
  board = await startBoardServer({ cfg: env.cfg, log: pino({ level: 'silent' }), port: 0, host: '127.0.0.1' });
  cliEnv = { ...env.env, CUTTER_API_URL: board.url };
}, 120_000);
afterAll(async () => {
  await board.close();
  await env.close();
});

function snapshot(name: string, records: { key: string; state: string; body: string }[]): string {
  const file = join(env.dir, `${name}.ndjson`);
  writeFileSync(file, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return file;
}

/** Each unit's state, version and current body hash, by key. */
async function units(keys: string[]): Promise<Record<string, { state: string; version: number; sha: string }>> {
  const { rows } = await env.db.pool.query<{ key: string; state: string; version: number; sha: string }>(
    `SELECT u.key, u.state, u.current_version AS version, v.body_sha256 AS sha
       FROM information_unit u JOIN unit_version v ON v.unit_id = u.id AND v.version = u.current_version
      WHERE u.corpus = 'ICX-WORK' AND u.key = ANY ($1)`,
    [keys],
  );
  return Object.fromEntries(rows.map((r) => [r.key, { state: r.state, version: r.version, sha: r.sha }]));
}

/** State and body hash only: what a revert promises to bring back. */
const stateAndBody = (u: Awaited<ReturnType<typeof units>>) => Object.fromEntries(Object.entries(u).map(([k, v]) => [k, { state: v.state, sha: v.sha }]));

async function count(sql: string, params: unknown[] = []): Promise<number> {
  const { rows } = await env.db.pool.query<{ n: number }>(sql, params);
  return rows[0]?.n ?? -1;
}

const corpusVersions = () => count(`SELECT count(*)::int AS n FROM unit_version v JOIN information_unit u ON u.id = v.unit_id WHERE u.corpus = 'ICX-WORK'`);
const logRows = (runId: string) => count('SELECT count(*)::int AS n FROM iu_lifecycle_log WHERE run_id = $1', [runId]);

/** The run object as the API gives it (JSON). */
async function apiRun(runId: string): Promise<RunView & { approvals: { allowance_needed: { max_units: number; transitions: string[] } } }> {
  const res = await fetch(`${board.url}/runs/${runId}`, { headers: { accept: 'application/json' } });
  return (await res.json()) as RunView & { approvals: { allowance_needed: { max_units: number; transitions: string[] } } };
}

/** The independent signer signs SG_1 (exactly the allowance the plan needs) and EXEC, and posts them to the board. */
async function signAndSubmit(runId: string): Promise<string[]> {
  const run = await waitForGate(env, runId);
  const need = (await apiRun(runId)).approvals.allowance_needed;
  const allowance = `max_units=${need.max_units}; transitions=${need.transitions.join(',')}`;
  for (const gate of ['SG_1', 'EXEC'] as const) {
    const answer = await postApproval(board.url, runId, approvalFor(run, gate, env.sovereign.key, gate === 'SG_1' ? { allowance } : {}));
    expect(answer.status, JSON.stringify(answer.json)).toBe(201);
  }
  return need.transitions;
}

/** A live run of a snapshot, approved and carried to its end. */
async function liveCut(file: string): Promise<string> {
  const runId = await env.enqueue('live', { snapshot: file, target: TARGET });
  await signAndSubmit(runId);
  const view = await env.waitForEnd(runId, 90_000);
  expect(view.status, JSON.stringify(view.error)).toBe('succeeded');
  return runId;
}

/** `cutter revert … --json` as the operator types it; the run object it printed. */
async function revertCli(args: string[]): Promise<{ result: CliResult; view: RunView | null }> {
  const result = await runCli(['revert', ...args, '--json'], cliEnv);
  const parsed = result.stdout.trim() ? (JSON.parse(result.stdout) as Partial<RunView>) : null;
  return { result, view: parsed && 'run_id' in parsed ? (parsed as RunView) : null };
}

/** A live revert enqueued with the CLI, paused at SG_1, signed, and carried to its end. */
async function liveRevert(of: string, extra: string[] = []): Promise<{ view: RunView; transitions: string[] }> {
  const { result, view } = await revertCli([of, '--mode', 'live', ...extra]);
  expect(result.code, result.stderr).toBe(0);
  expect(view?.status).toBe('awaiting_approval');
  expect(view?.revert_of).toBe(of);
  const runId = view?.run_id ?? '';
  const transitions = await signAndSubmit(runId);
  const ended = await env.waitForEnd(runId, 90_000);
  expect(ended.status, JSON.stringify(ended.error)).toBe('succeeded');
  expect(ended.verdict).toBe('PASS');
  return { view: ended, transitions };
}

let cutId = '';
let revertId = '';
let beforeCut: Awaited<ReturnType<typeof units>> = {};
let afterCut: Awaited<ReturnType<typeof units>> = {};

describe('cutter revert', () => {
  it('undoes a live cut: each unit back to its state and body before it, created units retired, history only grown', async () => {
    beforeCut = await units(CUT_KEYS);
    cutId = await liveCut(snapshot('cut', CUT));
    afterCut = await units(CUT_KEYS);
    expect(Object.keys(afterCut)).toHaveLength(CUT.length);
    const versionsBefore = await corpusVersions();

    const { view, transitions } = await liveRevert(cutId);
    revertId = view.run_id;
    // What the sovereign signed: the inverse of each transition the cut made, and the revisions.
    expect([...transitions].sort()).toEqual(['draft->retired', 'enacted->draft', 'enacted->retired', 'retired->draft', 'revise']);
    expect(view.plan?.unit_count).toBe(CUT.length);
    expect(view.plan?.by_transition).toEqual({ 'draft->retired': 3, 'enacted->draft': 8, 'enacted->retired': 1, 'retired->draft': 2, revise: REVISED });
    expect(view.revert_of).toBe(cutId);
    expect(view.revert_skipped).toEqual({ count: 0, units: [] });

    const after = await units(CUT_KEYS);
    const kept = CUT_KEYS.filter((k) => !CREATED.includes(k));
    expect(stateAndBody(Object.fromEntries(kept.map((k) => [k, after[k]!])))).toEqual(stateAndBody(beforeCut));
    for (const k of CREATED) expect(after[k]).toEqual({ ...afterCut[k], state: 'retired' });
    // A revised unit got a new version (the old body again); nothing was deleted.
    for (const k of [key(7), key(8), key(9), key(10), key(11)]) expect(after[k]?.version).toBe((afterCut[k]?.version ?? 0) + 1);
    expect(await corpusVersions()).toBe(versionsBefore + REVISED);
    // The lifecycle log has both runs, one row per unit each, the revert's last.
    expect(await logRows(cutId)).toBe(CUT.length);
    expect(await logRows(revertId)).toBe(CUT.length);
    const last = await env.db.pool.query<{ key: string; run_id: string }>(
      `SELECT DISTINCT ON (u.key) u.key, l.run_id FROM iu_lifecycle_log l JOIN information_unit u ON u.id = l.unit_id
        WHERE u.corpus = 'ICX-WORK' AND u.key = ANY ($1) ORDER BY u.key, l.id DESC`,
      [CUT_KEYS],
    );
    expect(new Set(last.rows.map((r) => r.run_id))).toEqual(new Set([revertId]));

    // Verify proved it, and said so.
    const verify = await env.db.pool.query<{ checks: { name: string; passed: boolean }[] }>('SELECT checks FROM cutter_governance.verify_result WHERE run_id = $1', [revertId]);
    const names = verify.rows[0]?.checks.filter((c) => c.passed).map((c) => c.name) ?? [];
    expect(names).toContain(`every reverted unit as before run ${cutId} (state, body sha256; created: retired)`);
    expect(names).toContain(`every unit run ${cutId} changed reverted or skipped`);
    expect(names).toContain("public.information_unit: no write since the baseline but the run's");
    expect(names).toContain('public.information_unit: the run wrote what the plan says');

    // The run object, its page and its report name what it reverts; the audit chain holds.
    expect((await apiRun(revertId)).revert_of).toBe(cutId);
    const page = await (await fetch(`${board.url}/runs/${revertId}`, { headers: { accept: 'text/html' } })).text();
    expect(page).toContain(`href="/runs/${cutId}"`);
    const report = await (await fetch(`${board.url}/runs/${revertId}/report?format=md`)).text();
    expect(report).toContain(`- revert of: ${cutId}`);
    const audit = await runCli(['audit', 'verify'], cliEnv);
    expect(audit.code, audit.stdout + audit.stderr).toBe(0);
  }, 240_000);

  it('reverts its own revert, which applies the cut again', async () => {
    const { view, transitions } = await liveRevert(revertId);
    // The revert's allowance inverted once more: created units come back out of retired.
    expect([...transitions].sort()).toEqual(['draft->enacted', 'draft->retired', 'retired->draft', 'retired->enacted', 'revise']);
    expect(view.plan?.unit_count).toBe(CUT.length);
    const again = await units(CUT_KEYS);
    expect(stateAndBody(again)).toEqual(stateAndBody(afterCut));
    revertId = view.run_id;
    const audit = await runCli(['audit', 'verify'], cliEnv);
    expect(audit.code, audit.stdout + audit.stderr).toBe(0);
  }, 240_000);

  it('refuses a unit changed by a later run, naming it and that run; --skip-drifted leaves it out and lists it as skipped', async () => {
    // A later cut enacts one unit the revert of the revert left a draft.
    const later = await liveCut(snapshot('later', [{ key: key(7), state: 'enacted', body: `${key(7)}: revised by the cut.` }]));
    const beforeRefusal = await env.corpus();

    const refused = await revertCli([revertId, '--mode', 'live']);
    expect(refused.result.code).toBe(1);
    expect(refused.result.stderr).toContain('[REVERT_DRIFTED]');
    expect(refused.result.stderr).toContain(`${key(7)} (changed by run ${later})`);
    expect(JSON.parse(refused.result.stdout)).toMatchObject({ error: { code: 'REVERT_DRIFTED' } });
    // Refused before anything was written: no run, no lock, the corpus as it was.
    expect(await count('SELECT count(*)::int AS n FROM cutter_governance.run WHERE revert_of = $1', [revertId])).toBe(0);
    expect(await count('SELECT count(*)::int AS n FROM cutter_governance.corpus_lock')).toBe(0);
    expect(await env.corpus()).toEqual(beforeRefusal);

    const before = await units(CUT_KEYS);
    const { view } = await liveRevert(revertId, ['--skip-drifted']);
    expect(view.plan?.unit_count).toBe(CUT.length - 1);
    expect(view.revert_skipped).toEqual({ count: 1, units: [{ key: key(7), changed_by_run: later }] });
    const after = await units(CUT_KEYS);
    // The skipped unit is as the later run left it; every other one as before the cut again.
    expect(after[key(7)]).toEqual(before[key(7)]);
    const others = CUT_KEYS.filter((k) => k !== key(7) && !CREATED.includes(k));
    expect(stateAndBody(Object.fromEntries(others.map((k) => [k, after[k]!])))).toEqual(stateAndBody(Object.fromEntries(others.map((k) => [k, beforeCut[k]!]))));
    const report = await (await fetch(`${board.url}/runs/${view.run_id}/report?format=md`)).text();
    expect(report).toContain(`| ${key(7)} | ${later} |`);
  }, 300_000);

  it('refuses to revert a dry run, a failed run, a run it does not know, and a run already reverted', async () => {
    const dry = await env.enqueue('dry', { snapshot: DEMO_SNAPSHOT });
    expect((await env.waitForEnd(dry)).status).toBe('succeeded');
    const ofDry = await revertCli([dry, '--mode', 'live']);
    expect(ofDry.result.code).toBe(1);
    expect(ofDry.result.stderr).toMatch(/cannot be reverted: it is a dry run, which applied nothing \[REVERT_NOT_REVERTIBLE\]/);

    await env.startFleet({
      precheck: () => Promise.reject(new CutterError('TEST_PRECHECK_FAILS', 'the test fails this run in precheck')),
    });
    const failed = await env.enqueue('live', { snapshot: DEMO_SNAPSHOT });
    expect((await env.waitForEnd(failed)).status).toBe('failed');
    await env.startFleet();
    const ofFailed = await revertCli([failed, '--mode', 'dry']);
    expect(ofFailed.result.code).toBe(1);
    expect(ofFailed.result.stderr).toMatch(/it ended failed; only a live run that succeeded can be reverted\. \[REVERT_NOT_REVERTIBLE\]/);

    const unknown = await revertCli(['run-20990101-000000-ffffff', '--mode', 'dry']);
    expect(unknown.result.code).toBe(2);
    expect(unknown.result.stderr).toContain('[RUN_UNKNOWN]');

    // The first cut was reverted (then re-applied): each of its units has changed since.
    const again = await revertCli([cutId, '--mode', 'dry']);
    expect(again.result.code).toBe(1);
    expect(again.result.stderr).toContain('[REVERT_DRIFTED]');
    expect(await count('SELECT count(*)::int AS n FROM cutter_governance.run WHERE revert_of = ANY ($1)', [[dry, failed, cutId]])).toBe(1);
  }, 180_000);

  it('checks its computed input as it checks a snapshot (C5): a body no snapshot may hold fails the revert in discover, staging nothing', async () => {
    // A unit another tool wrote with a body over the snapshot limit, which a cut then revised.
    const big = key(300);
    const { rows } = await env.db.pool.query<{ id: number }>(
      `INSERT INTO information_unit (corpus, key, state, current_version) VALUES ('ICX-WORK', $1, 'draft', 1) RETURNING id`,
      [big],
    );
    const body = 'x'.repeat(1_100_000);
    await env.db.pool.query(`INSERT INTO unit_version (unit_id, version, body, body_sha256) VALUES ($1, 1, $2, encode(sha256(convert_to($2, 'UTF8')), 'hex'))`, [rows[0]?.id, body]);
    await env.db.pool.query(`INSERT INTO iu_lifecycle_log (unit_id, from_state, to_state, version, actor) VALUES ($1, NULL, 'draft', 1, 'another tool')`, [rows[0]?.id]);
    const cut = await liveCut(snapshot('shrink', [{ key: big, state: 'draft', body: `${big}: a body of a sensible size.` }]));

    const { result, view } = await revertCli([cut, '--mode', 'dry']);
    expect(result.code).toBe(1);
    expect(view?.status).toBe('failed');
    expect(view?.failed_phase).toBe('discover');
    expect(view?.error?.code).toBe('SNAPSHOT_INVALID');
    expect(view?.error?.message).toContain(`(the inverse of run ${cut}) is invalid`);
    expect(view?.error?.message).toContain('oversize body');
    expect(await count('SELECT count(*)::int AS n FROM cutter_governance.snapshot_record WHERE run_id = $1', [view?.run_id])).toBe(0);
  }, 180_000);
});

describe('the database holds the revert rules', () => {
  it('has the inverse of each transition as the code has it', async () => {
    const kinds = [...ALLOWANCE_KINDS];
    const { rows } = await env.db.pool.query<{ k: string; inv: string }>(
      'SELECT k, cutter_governance.inverse_transition(k) AS inv FROM unnest($1::text[]) AS k',
      [kinds],
    );
    expect(Object.fromEntries(rows.map((r) => [r.k, r.inv]))).toEqual(Object.fromEntries(kinds.map((k) => [k, inverseTransition(k)])));
  });

  it('refuses a transition only a revert may take in the plan of a run that is no revert, and a run made into a revert later', async () => {
    const runId = 'run-revert-rule-0001';
    await env.db.pool.query(
      `INSERT INTO cutter_governance.run (run_id, target, corpus, mode, operator, status) VALUES ($1, $2, 'ICX-WORK', 'live', 'tester', 'failed')`,
      [runId, TARGET],
    );
    await env.db.pool.query(
      `INSERT INTO cutter_governance.cut_change_set (run_id, target, corpus, plan_sha256, unit_count, by_op, by_transition)
       VALUES ($1, $2, 'ICX-WORK', repeat('0', 64), 1, '{}', '{}')`,
      [runId, TARGET],
    );
    const item = env.db.pool.query(
      `INSERT INTO cutter_governance.cut_change_item (run_id, key, op, transition, unit_id, pre_state, pre_version, pre_body_sha256, post_state, post_version, post_body_sha256)
       VALUES ($1, 'ICX-WORK/050', 'transition', 'enacted->draft', 1, 'enacted', 1, repeat('a', 64), 'draft', 1, repeat('a', 64))`,
      [runId],
    );
    await expect(item).rejects.toMatchObject({ code: 'CX010' });
    await expect(env.db.pool.query('UPDATE cutter_governance.run SET revert_of = $2 WHERE run_id = $1', [runId, cutId])).rejects.toMatchObject({ code: 'CX012' });
    // Nor can a revert name a run that applied nothing.
    await expect(
      env.db.pool.query(
        `INSERT INTO cutter_governance.run (run_id, target, corpus, mode, operator, revert_of) VALUES ('run-revert-rule-0002', $1, 'ICX-WORK', 'dry', 'tester', $2)`,
        [TARGET, runId],
      ),
    ).rejects.toMatchObject({ code: 'CX012' });
  });
});
