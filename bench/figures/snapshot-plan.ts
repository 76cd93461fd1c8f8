import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { config } from '../../shared/config.js';
import { migrate } from '../../shared/deploy/migrate.js';
import { createPool, type Pool, type PoolClient } from '../../shared/db/pool.js';
import { PLAN_WORK_MEM } from '../../shared/plan/build.js';
import { timed, type Bench, type Figure } from '../harness.js';
import { dropScratch, scratchUrl } from './seed.js';
import { BENCH_CORPUS, seedBenchCorpus, writeBenchSnapshot } from './snapshot-data.js';

const run = promisify(execFile);
const CHILD = fileURLToPath(new URL('./snapshot-plan-child.js', import.meta.url));
const RSS_BUDGET_MIB = 256;
/** Runs fn on one connection with work_mem set for it, as buildPlan does for its diff. */
async function withWorkMem<T>(pool: Pool, workMem: string, fn: (db: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query(`SELECT set_config('work_mem', $1, false)`, [workMem]);
    return await fn(client);
  } finally {
    await client.query('RESET work_mem').catch(() => undefined);
    client.release();
  }
}

interface ChildResult {
  seconds: number;
  records: number;
  max_rss_kib: number;
  stage_seconds?: number;
  plan_seconds?: number;
  unit_count?: number;
}

/** Runs one measurement in a fresh node process (its peak RSS is then its own). */
async function child(args: string[]): Promise<ChildResult> {
  const { stdout } = await run(process.execPath, [CHILD, ...args], { maxBuffer: 1 << 20 });
  return JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as ChildResult;
}

/** The best (fastest) of a few runs: the machine is shared, the floor and cutter get the same treatment. */
async function best(args: string[], times: number): Promise<ChildResult> {
  let top: ChildResult | undefined;
  for (let i = 0; i < times; i += 1) {
    const r = await child(args);
    if (!top || r.seconds < top.seconds) top = r;
  }
  return top as ChildResult;
}

const mib = (kib: number) => kib / 1024;
const rate = (records: number, s: number) => `${Math.round(records / s / 1000)}k rec/s`;

/** One size's measurements: the floor, the parse alone, the whole path, and the database's own floors. */
interface SizeResult {
  n: number;
  floor: ChildResult;
  parse: ChildResult;
  full: ChildResult;
  db: { stage: number; diff: number };
}

/**
 * Parsing and planning a snapshot of n records against a corpus of n units,
 * beside the floor of reading the same file line by line with JSON.parse and
 * nothing else: 1,000,000 (100,000 with --quick) for the headline rows, and
 * 10,000 and 100,000 as well in a full run so the growth of the cost shows.
 * Each measurement runs in its own process, so peak RSS is that of the work measured.
 */
export const snapshotPlanBench: Bench = {
  name: 'snapshot-plan',
  async run({ quick, log }) {
    const sizes = quick ? [100_000] : [10_000, 100_000, 1_000_000];
    const results: SizeResult[] = [];
    for (const n of sizes) results.push(await measureSize(n, log));
    const headline = results[results.length - 1];
    if (!headline) throw new Error('no size measured');
    return [...figures(headline), ...results.slice(0, -1).map(growthFigure)];
  },
};

async function measureSize(n: number, log: (line: string) => void): Promise<SizeResult> {
  const url = scratchUrl(`plan${n}`);
  const dir = mkdtempSync(join(tmpdir(), 'cutter-bench-plan-'));
  const file = join(dir, 'snapshot.ndjson');
  const runId = 'bench-plan-run-1';
  try {
    await migrate(url, { execRole: config().CUTTER_EXEC_ROLE });
    const pool = createPool(url, { max: 2 });
    try {
      const setup = await timed(async () => {
        await seedBenchCorpus(pool, n);
        return writeBenchSnapshot(file, n);
      });
      const expected = setup.result;
      log(`corpus of ${n} units and snapshot of ${n} records ready in ${setup.seconds.toFixed(1)} s`);
      await pool.query(
        `INSERT INTO cutter_governance.target_registry (name, corpus, owner, protected, max_units, allowed_transitions, registered_by)
         VALUES ('bench', $1, 'bench', false, $2, ARRAY['new->draft', 'draft->enacted', 'revise'], 'bench')`,
        [BENCH_CORPUS, n],
      );
      for (const id of [runId, 'bench-plan-floor-1']) {
        await pool.query(`INSERT INTO cutter_governance.run (run_id, target, corpus, mode, operator) VALUES ($1, 'bench', $2, 'dry', 'bench')`, [id, BENCH_CORPUS]);
      }
      // Alternate floor and cutter so both see the same machine.
      const floor = await best(['floor', file], 3);
      const parse = await best(['parse', file, BENCH_CORPUS], 3);
      log(`${n}: floor ${floor.seconds.toFixed(2)} s, parse ${parse.seconds.toFixed(2)} s`);
      const full = await child(['full', file, url, runId, 'bench']);
      log(`${n}: stage ${full.stage_seconds?.toFixed(1)} s, plan ${full.plan_seconds?.toFixed(1)} s, ${full.unit_count} items (expected ${expected})`);
      if (full.unit_count !== expected) throw new Error(`the plan has ${full.unit_count} items, the data says ${expected}`);
      // The database's own floor for the plan's diff: the join alone, counted server-side, nothing written.
      const diff = (
        await timed(() =>
          withWorkMem(pool, PLAN_WORK_MEM, (db) =>
            db.query(
              `SELECT count(*) FROM cutter_governance.snapshot_record s
                 LEFT JOIN public.information_unit u ON u.corpus = $2 AND u.key = s.key
                 LEFT JOIN public.unit_version v ON v.unit_id = u.id AND v.version = u.current_version
                WHERE s.run_id = $1 AND (u.id IS NULL OR u.state <> s.state OR v.body_sha256 IS DISTINCT FROM s.body_sha256)`,
              [runId, BENCH_CORPUS],
            ),
          ),
        )
      ).seconds;
      // The database's own floor for staging: the same rows copied server-side, no parsing, no network.
      const stage = (
        await timed(() =>
          pool.query(
            `INSERT INTO cutter_governance.snapshot_record (run_id, key, state, body, body_sha256, line_no)
             SELECT 'bench-plan-floor-1', key, state, body, body_sha256, line_no FROM cutter_governance.snapshot_record WHERE run_id = $1`,
            [runId],
          ),
        )
      ).seconds;
      return { n, floor, parse, full, db: { stage, diff } };
    } finally {
      await pool.end();
    }
  } finally {
    await dropScratch(url);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A smaller size, as cost growth: the whole path beside its floor. */
function growthFigure(r: SizeResult): Figure {
  const count = r.n.toLocaleString('en-US');
  return {
    name: `parse + stage + plan, ${count}-record snapshot vs ${count}-unit corpus (cost growth)`,
    value: `${r.full.seconds.toFixed(2)} s (stage ${(r.full.stage_seconds ?? 0).toFixed(2)} s, plan ${(r.full.plan_seconds ?? 0).toFixed(2)} s; ${r.full.unit_count ?? 0} items)`,
    floor: `${r.floor.seconds.toFixed(2)} s (readline + JSON.parse)`,
    ratio: r.full.seconds / r.floor.seconds,
    goal: 'reported',
    met: null,
    notes: `server-side floors at this size: append ${r.db.stage.toFixed(2)} s, diff join ${r.db.diff.toFixed(2)} s`,
  };
}

function figures({ n, floor, parse, full, db }: SizeResult): Figure[] {
  const count = n.toLocaleString('en-US');
  const floorText = `${floor.seconds.toFixed(2)} s, ${rate(n, floor.seconds)} (readline + JSON.parse)`;
  const stage = full.stage_seconds ?? 0;
  const plan = full.plan_seconds ?? 0;
  return [
    {
      name: `snapshot parse + validate (C5), ${count} records`,
      value: `${parse.seconds.toFixed(2)} s, ${rate(n, parse.seconds)}`,
      floor: floorText,
      ratio: parse.seconds / floor.seconds,
      goal: 'throughput ≥ 0.5× floor (ratio ≤ 2)',
      met: parse.seconds / floor.seconds <= 2,
      notes: 'every record checked (fields, key pattern and corpus, state, body size, storable text) and keys checked unique, best of 3 fresh processes each',
    },
    {
      name: `peak RSS, parse + stage + plan of ${count} records`,
      value: `${mib(full.max_rss_kib).toFixed(0)} MiB (parse alone ${mib(parse.max_rss_kib).toFixed(0)} MiB)`,
      floor: `${mib(floor.max_rss_kib).toFixed(0)} MiB (readline + JSON.parse)`,
      ratio: full.max_rss_kib / floor.max_rss_kib,
      goal: `< ${RSS_BUDGET_MIB} MiB`,
      met: mib(full.max_rss_kib) < RSS_BUDGET_MIB,
    },
    {
      name: `parse + stage + plan, ${count}-record snapshot vs ${count}-unit corpus`,
      value: `${full.seconds.toFixed(1)} s (stage ${stage.toFixed(1)} s, plan ${plan.toFixed(1)} s; ${full.unit_count ?? 0} items)`,
      floor: floorText,
      ratio: full.seconds / floor.seconds,
      goal: 'throughput ≥ 0.5× floor (ratio ≤ 2)',
      met: full.seconds / floor.seconds <= 2,
      notes:
        `stage = one read of the file, every record checked while it streams into one COPY (then ANALYZE for the plan's join); ` +
        `plan = the diff and the items' insert in one statement, then the plan hash. The gap is PostgreSQL's per-row work, measured ` +
        `server-side in the same run with no parsing and no network: appending the same rows to snapshot_record (INSERT … SELECT) ` +
        `${db.stage.toFixed(1)} s, and the diff's join alone (count only, nothing written) ${db.diff.toFixed(1)} s, which together are ` +
        `${((db.stage + db.diff) / floor.seconds).toFixed(1)}× the floor before a byte is parsed. On this 2-core machine the parse ` +
        `(one core) overlaps only the append; the join of ${count} staged rows with ${count} units and their current versions, ` +
        'and the items insert (its CHECKs, primary key and foreign key per item), follow it.',
    },
  ];
}
