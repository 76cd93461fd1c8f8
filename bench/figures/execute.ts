import { mkdtempSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { ident, splitDatabaseUrl, type Pool } from '../../shared/db/pool.js';
import { planScope } from '../../shared/plan/scope.js';
import { IN_DATABASE_MAX_ITEMS } from '../../shared/plan/hash.js';
import { recomputePlanSha256 } from '../../shared/plan/hash.js';
import { timed, type Bench, type Figure } from '../harness.js';
import { seedLiveBenchDatabase, settleCorpus } from '../support/bench-database.js';
import { withLiveFleet } from '../support/live-run.js';
import { timeSameSettingsPipeline } from '../support/shell-pipeline.js';
import { outsidePhases, phaseList, phaseSum, roundedPhases, timeSnapshotRun, type TimedRun } from '../support/timed-run.js';
import { dropScratch, scratchUrl } from './seed.js';
import { BENCH_CORPUS, benchBody, benchKey } from './snapshot-data.js';

/**
 * Live execute of a p-unit plan against a 2p-unit corpus, through the real
 * flow (enqueue → precheck … cutplan → SG_1 + EXEC signed and submitted →
 * backup → execute → verify); execute's time is its run_phase duration.
 * The floor, in the same run: the same writes as hand-written set-based SQL
 * in one transaction on a TEMPLATE clone of the same database, from a table
 * loaded beforehand (untimed). The plan: 90% of the items enact an existing
 * draft (every 10th of them also gets a new body), 10% create new drafts.
 */

const TARGET = 'bench-exec';

/** The snapshot of the plan: only the units to change (a unit absent from a snapshot is left as it is). */
export async function writePlanSnapshot(path: string, corpus: number, plan: number): Promise<void> {
  const out = createWriteStream(path);
  const enact = Math.round(plan * 0.9);
  let buf = '';
  for (let i = 1; i <= plan; i += 1) {
    const k = i <= enact ? benchKey(i) : benchKey(corpus + i - enact);
    const line = i <= enact ? { key: k, state: 'enacted', body: benchBody(k, i % 10 === 0 ? 2 : 1) } : { key: k, state: 'draft', body: benchBody(k, 1) };
    buf += `${JSON.stringify(line)}\n`;
    if (buf.length > 1 << 16) {
      if (!out.write(buf)) await once(out, 'drain');
      buf = '';
    }
  }
  out.end(buf);
  await once(out, 'finish');
}

/** The floor's pre-loaded items (untimed): what the plan writes, computed in SQL on the clone. */
const LOAD_FLOOR_ITEMS = `
  CREATE TABLE floor_item AS
  SELECT k AS key, CASE WHEN g <= $3 THEN 'update' ELSE 'create' END AS op,
         CASE WHEN g <= $3 THEN 'draft' END AS pre_state,
         CASE WHEN g <= $3 THEN 'enacted' ELSE 'draft' END AS post_state,
         CASE WHEN g <= $3 AND g % 10 = 0 THEN 2 ELSE 1 END AS post_version,
         b AS post_body, encode(sha256(convert_to(b, 'UTF8')), 'hex') AS post_body_sha256
    FROM generate_series(1, $2::int) g
   CROSS JOIN LATERAL (SELECT $1 || '/' || lpad((CASE WHEN g <= $3 THEN g ELSE $4 + g - $3 END)::text, 7, '0') AS k) kk
   CROSS JOIN LATERAL (SELECT CASE WHEN g > $3 OR g % 10 = 0
                                   THEN k || ': benchmark information unit, text of version ' || (CASE WHEN g <= $3 THEN 2 ELSE 1 END) || '.' END AS b) bb`;

/** The same writes execute makes, hand-written, in one transaction. */
const FLOOR_WRITES = [
  `INSERT INTO public.information_unit (corpus, key, state, current_version)
   SELECT $1, key, post_state, post_version FROM floor_item WHERE op = 'create'`,
  `UPDATE public.information_unit u SET state = f.post_state, current_version = f.post_version, updated_at = now()
     FROM floor_item f WHERE f.op = 'update' AND u.corpus = $1 AND u.key = f.key`,
  `INSERT INTO public.unit_version (unit_id, version, body, body_sha256, created_by_run)
   SELECT u.id, f.post_version, f.post_body, f.post_body_sha256, 'floor'
     FROM floor_item f JOIN public.information_unit u ON u.corpus = $1 AND u.key = f.key WHERE f.post_body IS NOT NULL`,
  `INSERT INTO public.iu_lifecycle_log (unit_id, from_state, to_state, version, run_id, actor)
   SELECT u.id, f.pre_state, f.post_state, f.post_version, 'floor', 'floor'
     FROM floor_item f JOIN public.information_unit u ON u.corpus = $1 AND u.key = f.key`,
];

async function admin<T>(url: string, fn: (c: pg.Client, database: string) => Promise<T>): Promise<T> {
  const { database, maintenanceUrl } = splitDatabaseUrl(url);
  const c = new pg.Client({ connectionString: maintenanceUrl });
  await c.connect();
  try {
    return await fn(c, database);
  } finally {
    await c.end();
  }
}

interface SizeResult {
  plan: number;
  corpus: number;
  execute: number;
  floor: number;
  phases: Record<string, number>;
  checks: Record<string, number>;
  /** The live run timed whole (minus the wait for signatures). */
  run: TimedRun;
  /** The bare backup pipeline of the run's database, timed just before the run (only when the whole run is compared). */
  pipeline?: { seconds: number; bytes: number };
}

/**
 * The profile behind the gap: execute's passes over the plan that the floor
 * does not make, re-timed after the run in a transaction that is rolled back
 * (same data size). The precondition and postcondition checks are no longer
 * passes of their own (they ride in the apply statement), so only the plan
 * re-hash and the scope count are left to time.
 */
async function profileChecks(pool: Pool, runId: string): Promise<Record<string, number>> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const hash = await timed(() => recomputePlanSha256(client, runId));
    const scope = await timed(() => planScope(client, runId));
    await client.query('ROLLBACK');
    return { 'plan re-hash': hash.seconds, 'plan scope count': scope.seconds };
  } finally {
    client.release();
  }
}

/**
 * One size: build, clone, floor on the clone, live run on the original.
 * With `whole`, the original is then settled (VACUUM ANALYZE, checkpoint)
 * and its bare backup pipeline timed just before the run is enqueued.
 */
async function measureSize(corpus: number, plan: number, whole: boolean, log: (line: string) => void): Promise<SizeResult> {
  const url = scratchUrl(`exec${plan}`);
  const floorUrl = scratchUrl(`execfloor${plan}`);
  const dir = mkdtempSync(join(tmpdir(), 'cutter-bench-exec-'));
  try {
    await seedLiveBenchDatabase(url, corpus, { name: TARGET, maxUnits: plan, allowedTransitions: ['new->draft', 'draft->enacted', 'revise'], notes: 'execute benchmark' });
    // A TEMPLATE clone needs the source without connections: taken before the run starts.
    await admin(floorUrl, (c, db) => c.query(`CREATE DATABASE ${ident(db)} TEMPLATE ${ident(splitDatabaseUrl(url).database)}`));

    const floorClient = new pg.Client({ connectionString: floorUrl });
    await floorClient.connect();
    const enact = Math.round(plan * 0.9);
    await floorClient.query(LOAD_FLOOR_ITEMS, [BENCH_CORPUS, plan, enact, corpus]);
    await floorClient.query('ANALYZE floor_item');
    const floor = await timed(async () => {
      await floorClient.query('BEGIN');
      for (const sql of FLOOR_WRITES) await floorClient.query(sql, [BENCH_CORPUS]);
      await floorClient.query('COMMIT');
    });
    await floorClient.end();
    log(`${plan}/${corpus}: floor ${floor.seconds.toFixed(2)} s`);
    // Settled after the clone, so the floor above runs on the database it always had.
    if (whole) await settleCorpus(url);

    const snapshot = join(dir, 'plan.ndjson');
    await writePlanSnapshot(snapshot, corpus, plan);
    return await withLiveFleet(dir, url, `bench-exec-${process.pid}-${plan}`, async (live) => {
      const pipeline = whole ? await timeSameSettingsPipeline(url, live.backupKey, join(dir, 'bare.pgdump.gpg')) : undefined;
      if (pipeline) log(`${plan}/${corpus}: bare backup pipeline ${pipeline.seconds.toFixed(2)} s`);
      const run = await timeSnapshotRun(live, TARGET, snapshot, plan);
      const execute = run.phases['execute'] ?? Number.NaN;
      const checks = await profileChecks(live.pool, run.runId);
      log(`${plan}/${corpus}: execute ${execute.toFixed(2)} s, whole run ${run.seconds.toFixed(2)} s; phases ${JSON.stringify(roundedPhases(run.phases))}`);
      return { plan, corpus, execute, floor: floor.seconds, phases: run.phases, checks, run, ...(pipeline ? { pipeline } : {}) };
    });
  } finally {
    await dropScratch(url);
    await dropScratch(floorUrl);
    rmSync(dir, { recursive: true, force: true });
  }
}

const fmt = (n: number) => n.toLocaleString('en-US');

type Measured = SizeResult & { rounds: number; growth: boolean };

/** The execute phase beside the hand-written SQL of the same writes. */
function executeFigure(r: Measured): Figure {
  const ratio = r.execute / r.floor;
  const extra = Object.values(r.checks).reduce((a, b) => a + b, 0);
  const checks = Object.entries(r.checks).map(([k, s]) => `${k} ${s.toFixed(2)} s`).join(', ');
  const other = Object.entries(r.phases)
    .filter(([p, s]) => p !== 'execute' && p !== 'approval-gate' && Number.isFinite(s))
    .map(([p, s]) => `${p} ${s.toFixed(2)} s`)
    .join(', ');
  return {
    name: `live execute of ${fmt(r.plan)} units (corpus ${fmt(r.corpus)})${r.rounds > 1 ? `, median of ${r.rounds} rounds` : ''}${r.growth ? ' (cost growth)' : ''}`,
    value: `${r.execute.toFixed(2)} s (${fmt(Math.round(r.plan / r.execute))} units/s)`,
    floor: `${r.floor.toFixed(2)} s (hand-written set-based SQL, same writes, one transaction)`,
    ratio,
    goal: r.growth ? 'reported (≤ 1.3× is the goal at 100,000)' : '≤ 1.3×',
    met: r.growth ? null : ratio <= 1.3,
    notes:
      `execute = run_phase duration of a real live run approved with SG_1 + EXEC through the submit path; besides the floor's writes it ` +
      `re-hashes the ${fmt(r.plan)} stored items (plan hash, ${r.plan > IN_DATABASE_MAX_ITEMS ? 'streamed in canonical order from PostgreSQL and hashed in Node' : 'built and hashed inside PostgreSQL'}), counts the plan's scope, re-verifies the ` +
      `consumed approvals, checks every unit's precondition under its row lock and proves every postcondition, writes the ledger and audit row. ` +
      `The checks ride in the one apply statement: each UPDATE's WHERE is the item's precondition (PostgreSQL re-checks it on the newest ` +
      `row version after a lock wait), a create is ON CONFLICT DO NOTHING, and the statement's row counts against the plan's item count ` +
      `(keys being unique) prove every item landed, so there is no lock pass, drift join or postcondition join of their own (at 100k they ` +
      `cost 0.55 s and 1.04 s, plus 0.83 s for a re-hash streamed through Node, in the 2026-11-24 run). ` +
      `Gap (${(r.execute - r.floor).toFixed(2)} s): the passes over the plan the floor does not make, re-timed after the run — ${checks} ` +
      `(${extra.toFixed(2)} s together). The rest (${Math.max(0, r.execute - r.floor - extra).toFixed(2)} s) is the fixed re-reads of authority ` +
      `(run, change set, target, approval re-verification, audit append, ledger) and the apply statement's own extra work (the precondition ` +
      `join with unit_version, speculative inserts for creates): a backend CPU-time profile on this machine (same plan shapes, medians ` +
      `of 3–9 rounds in rolled-back transactions, four sets) put the apply statement at 1.0–1.17× the floor's four statements for 100k ` +
      `and 1.1× for 10k. The machine is shared, so single runs vary by ±30%. Other phases of that run: ${other}.`,
  };
}

/**
 * The same live run timed whole, as the revert row times its runs, beside
 * the bare hand path: the backup pipeline of the run's database plus the
 * hand-written SQL of the same writes.
 */
function wholeRunFigure(r: Measured, pipeline: { seconds: number; bytes: number }): Figure {
  const floor = pipeline.seconds + r.floor;
  const ratio = r.run.seconds / floor;
  return {
    name: `live cut of ${fmt(r.plan)} units (corpus ${fmt(r.corpus)}), whole run minus the wait for signatures`,
    value: `${r.run.seconds.toFixed(2)} s`,
    floor: `${floor.toFixed(2)} s (bare backup pipeline ${pipeline.seconds.toFixed(2)} s + hand-written set-based SQL ${r.floor.toFixed(2)} s, same run)`,
    ratio,
    goal: '≤ 1.5×',
    met: ratio <= 1.5,
    notes:
      `cutter = the live run of the row above timed whole: enqueue → paused at SG_1, plus the approval submitted → succeeded (the wait ` +
      `for signatures and the signing left out), as the revert row times its runs. Its phases: ${phaseList(r.run.phases)}; outside the ` +
      `phases ${outsidePhases(r.run).toFixed(2)} s (the enqueue with the snapshot's sha256, the hand-offs between jobs, the 20 ms status ` +
      `polling). floor = what an operator does by hand for the same cut: the backup as a shell pipeline, \`pg_dump -Fc --compress=1 | gpg ` +
      `--compress-algo none --encrypt -r FPR > file\` (cutter's own compression settings) of the run's database just before the run was ` +
      `enqueued (${(pipeline.bytes / 2 ** 20).toFixed(1)} MiB), plus the hand-written set-based SQL of the row above (the same writes, one ` +
      `transaction, on a TEMPLATE clone). Cutter's backup phase took ${((r.run.phases['backup'] ?? Number.NaN) / pipeline.seconds).toFixed(2)}× ` +
      `the pipeline and its execute phase ${(r.execute / r.floor).toFixed(2)}× the SQL; the rest of the gap is the phases the hand path does ` +
      `not have (precheck, grant-probe, discover, cutplan, verify: ${phaseSum(r.run.phases, ['backup', 'execute']).toFixed(2)} s). Before the ` +
      `pipeline the database was settled (VACUUM ANALYZE of the corpus tables and a checkpoint, after the clone was taken), so neither side ` +
      `pays for the seed's writes.`,
  };
}

/** The headline size beside its floor, and the other sizes as cost growth; the largest size also timed whole. */
export const executeBench: Bench = {
  name: 'execute',
  async run({ quick, log }): Promise<Figure[]> {
    // A single round swings on this shared machine: 0.92× to 1.38× in one day at 10,000, and at 100,000
    // 1.07× to 1.59× for the same tree (execute 2.66-3.68 s, its floor 2.12-3.03 s, on 2026-12-02). Both
    // get three rounds and report the median one (by ratio); the million gets one (it takes minutes).
    // `whole`: the run is also compared whole with the bare hand path (issue: big cut).
    const sizes = quick
      ? [{ corpus: 20_000, plan: 10_000, rounds: 1, growth: false, whole: true }]
      : [
          { corpus: 20_000, plan: 10_000, rounds: 3, growth: false, whole: false },
          { corpus: 200_000, plan: 100_000, rounds: 3, growth: false, whole: false },
          // Cost growth (issue 11): a million units, about five minutes with its seeding and floor.
          { corpus: 2_000_000, plan: 1_000_000, rounds: 1, growth: true, whole: true },
        ];
    const results: Measured[] = [];
    for (const s of sizes) {
      const rounds: SizeResult[] = [];
      for (let i = 0; i < s.rounds; i += 1) rounds.push(await measureSize(s.corpus, s.plan, s.whole, log));
      const median = [...rounds].sort((a, b) => a.execute / a.floor - b.execute / b.floor)[Math.floor(rounds.length / 2)];
      if (median) results.push({ ...median, rounds: s.rounds, growth: s.growth });
    }
    return results.flatMap((r) => [executeFigure(r), ...(r.pipeline ? [wholeRunFigure(r, r.pipeline)] : [])]);
  },
};
