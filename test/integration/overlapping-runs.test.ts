import { copyFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localSovereign, type LocalSovereign } from '../../shared/demo/sovereign.js';
import { loadVerifyResult } from '../../shared/runs/checks.js';
import { fingerprintCorpus } from '../support/corpus-tables.js';
import { insertTargetRow, ndjson, seedUnits, sha256 } from '../support/plan-fixtures.js';
import { waitFor } from '../support/poll.js';
import { createRunEnv, type RunEnv } from '../support/run-env.js';
import { waitForGate } from '../support/sovereign.js';

/**
 * Live runs on distinct corpora overlap freely: each run's proof (the writes
 * to its corpus since its baseline, docs/proof.md) covers its own corpus,
 * so one run's cut is not another run's surprise. A write to the run's own
 * corpus by anyone else still fails its verify.
 *
 * Every run here is enqueued and paused at SG_1 before the first approval,
 * so every baseline predates every cut: with whole-table proofs, each run
 * approved after the first would fail verify on the others' writes.
 */

let env: RunEnv;
let sovereign: LocalSovereign;
let corpora = 0;

beforeAll(async () => {
  env = await createRunEnv('overlap');
  sovereign = localSovereign(join(env.dir, 'sovereign'));
  // The gate validates again against SOVEREIGN_KEYS: the local sovereign's key is trusted there too.
  for (const pem of readdirSync(sovereign.keysDir)) copyFileSync(join(sovereign.keysDir, pem), join(env.sovereign.dir, pem));
  await env.startFleet();
});
afterAll(async () => {
  await env.close();
});

const UNITS = 12;

/** A corpus of its own (12 drafts), its target, and a snapshot that enacts the first `enact`, revises unit 12 and adds unit 13. */
interface Corpus {
  name: string;
  target: string;
  snapshot: string;
  key: (n: number) => string;
  items: number;
  states: Record<string, number>;
}

async function newCorpus(enact: number): Promise<Corpus> {
  corpora += 1;
  const name = `OV-${corpora}`;
  const key = (n: number) => `${name}/${String(n).padStart(2, '0')}`;
  const body = (n: number, v: number) => `${key(n)}: overlap unit, text of version ${v}.`;
  await seedUnits(env.db.pool, name, Array.from({ length: UNITS }, (_, i) => ({ key: key(i + 1), state: 'draft' as const, body: body(i + 1, 1) })));
  await insertTargetRow(env.db.pool, { name: name.toLowerCase(), corpus: name });
  const records = [
    ...Array.from({ length: enact }, (_, i) => ({ key: key(i + 1), state: 'enacted', body: body(i + 1, 1) })),
    { key: key(UNITS), state: 'draft', body: body(UNITS, 2) },
    { key: key(UNITS + 1), state: 'draft', body: body(UNITS + 1, 1) },
  ];
  const snapshot = join(env.dir, `${name}.ndjson`);
  writeFileSync(snapshot, ndjson(records));
  return { name, target: name.toLowerCase(), snapshot, key, items: enact + 2, states: { draft: UNITS + 1 - enact, enacted: enact } };
}

/** Enqueues a live run on the corpus and waits for it to pause at SG_1 (its gate job delayed). */
async function pausedRun(c: Corpus): Promise<string> {
  const runId = await env.enqueue('live', { target: c.target, snapshot: c.snapshot });
  await waitForGate(env, runId);
  return runId;
}

/**
 * SG_1 + EXEC through the real submit path. The kill switch is on for one
 * run at a time (an EXEC grant for another run is refused while it holds),
 * so each approval waits for the previous run's execute to turn it off.
 */
async function approve(runId: string): Promise<void> {
  await waitFor('the kill switch to be free', async () => {
    const { rows } = await env.db.pool.query<{ on: boolean }>('SELECT cutter_governance.execution_enabled() AS on');
    return rows[0]?.on ? undefined : true;
  }, { deadlineMs: 90_000, stepMs: 20 });
  await sovereign.approve({ cfg: env.cfg, pool: env.db.pool, redis: env.redis }, runId);
}

async function states(corpus: string): Promise<Record<string, number>> {
  const { rows } = await env.db.pool.query<{ state: string; n: number }>(
    'SELECT state, count(*)::int AS n FROM information_unit WHERE corpus = $1 GROUP BY state ORDER BY state',
    [corpus],
  );
  return Object.fromEntries(rows.map((r) => [r.state, r.n]));
}

/** What the run wrote, from the rows themselves. */
async function written(runId: string): Promise<{ ledger: number; log: number; versions: number }> {
  const { rows } = await env.db.pool.query<{ ledger: number; log: number; versions: number }>(
    `SELECT (SELECT count(*)::int FROM cutter_governance.execution_ledger WHERE run_id = $1) AS ledger,
            (SELECT count(*)::int FROM iu_lifecycle_log WHERE run_id = $1) AS log,
            (SELECT count(*)::int FROM unit_version WHERE created_by_run = $1) AS versions`,
    [runId],
  );
  return rows[0] ?? { ledger: -1, log: -1, versions: -1 };
}

async function failedChecks(runId: string): Promise<string[]> {
  return ((await loadVerifyResult(env.db.pool, runId))?.checks ?? []).filter((c) => !c.passed).map((c) => c.name);
}

describe('overlapping live runs on distinct corpora', () => {
  it('four runs enqueued together and approved in the order 3, 1, 4, 2 all pass, each applied exactly once', async () => {
    const cs = [await newCorpus(3), await newCorpus(4), await newCorpus(5), await newCorpus(6)];
    const demoBefore = await fingerprintCorpus(env.db.pool, 'ICX-WORK');
    const runIds = await Promise.all(cs.map(pausedRun));
    for (const i of [2, 0, 3, 1]) await approve(runIds[i] ?? '');

    const views = await Promise.all(runIds.map((id) => env.waitForEnd(id, 120_000)));
    for (const [i, c] of cs.entries()) {
      const view = views[i];
      const runId = runIds[i] ?? '';
      expect(view?.status, `${c.name}: ${JSON.stringify(view?.error)} ${JSON.stringify(await failedChecks(runId))}`).toBe('succeeded');
      expect(view?.verdict).toBe('PASS');
      expect(view?.plan?.unit_count).toBe(c.items);
      expect(await written(runId)).toEqual({ ledger: 1, log: c.items, versions: 2 });
      expect(await states(c.name)).toEqual(c.states);
      const report = await env.db.pool.query<{ report: string }>('SELECT report FROM cutter_governance.run WHERE run_id = $1', [runId]);
      expect(report.rows[0]?.report).toContain(`Of corpus ${c.name}:`);
    }
    expect(await fingerprintCorpus(env.db.pool, 'ICX-WORK')).toEqual(demoBefore);
  });
});

describe("a write by someone else to the run's own corpus, between cutplan and verify", () => {
  it('to a unit outside the plan fails verify', async () => {
    const c = await newCorpus(3);
    const runId = await pausedRun(c);
    await env.db.pool.query(`UPDATE information_unit SET state = 'retired', updated_at = now() WHERE key = $1`, [c.key(10)]);
    await approve(runId);
    const view = await env.waitForEnd(runId, 120_000);
    expect(view.status).toBe('failed');
    expect(view.failed_phase).toBe('verify');
    expect(view.verdict).toBe('FAIL');
    expect(await failedChecks(runId)).toEqual(["public.information_unit: no write since the baseline but the run's"]);
    expect((await written(runId)).ledger).toBe(1);
  });

  it('as an extra lifecycle row on one of its planned units fails verify', async () => {
    const c = await newCorpus(3);
    const runId = await pausedRun(c);
    await env.db.pool.query(
      `INSERT INTO iu_lifecycle_log (unit_id, from_state, to_state, version, actor) SELECT id, 'draft', 'draft', 1, 'someone else' FROM information_unit WHERE key = $1`,
      [c.key(1)],
    );
    await approve(runId);
    const view = await env.waitForEnd(runId, 120_000);
    expect(view.status).toBe('failed');
    expect(view.verdict).toBe('FAIL');
    expect(await failedChecks(runId)).toEqual(["public.iu_lifecycle_log: no write since the baseline but the run's"]);
  });
});

describe('a write to another corpus during the run', () => {
  it('does not fail it', async () => {
    const c = await newCorpus(3);
    const other = await newCorpus(3);
    const runId = await pausedRun(c);
    // Units, versions and log rows of other corpora: the demo's, and another OV corpus with no run.
    await env.db.pool.query(`UPDATE information_unit SET state = 'enacted', updated_at = now() WHERE key = 'ICX-WORK/001'`);
    await env.db.pool.query(
      `INSERT INTO unit_version (unit_id, version, body, body_sha256) SELECT id, 2, 'v2 by someone', $2 FROM information_unit WHERE key = $1`,
      [other.key(2), sha256('v2 by someone')],
    );
    await env.db.pool.query(
      `INSERT INTO iu_lifecycle_log (unit_id, from_state, to_state, version, actor) SELECT id, 'draft', 'enacted', 1, 'someone else' FROM information_unit WHERE key = $1`,
      [other.key(3)],
    );
    await seedUnits(env.db.pool, other.name, [{ key: other.key(50), state: 'draft', body: 'new by someone' }]);
    await approve(runId);
    const view = await env.waitForEnd(runId, 120_000);
    expect(view.status, JSON.stringify(await failedChecks(runId))).toBe('succeeded');
    expect(view.verdict).toBe('PASS');
    expect(await written(runId)).toEqual({ ledger: 1, log: c.items, versions: 2 });
  });
});
