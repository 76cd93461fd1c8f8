import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Pool } from '../../shared/db/pool.js';
import { timed, type Bench, type Figure } from '../harness.js';
import { seedLiveBenchDatabase, settleCorpus } from '../support/bench-database.js';
import { withLiveFleet } from '../support/live-run.js';
import { timeSameSettingsPipeline } from '../support/shell-pipeline.js';
import { outsidePhases, phaseList, phaseSum, roundedPhases, timeSnapshotRun, type TimedRun } from '../support/timed-run.js';
import { dropScratch, scratchUrl } from './seed.js';
import { BENCH_CORPUS, benchBody, benchKey } from './snapshot-data.js';

/**
 * A small cut of a big corpus: a live run enacting 10 draft units (bodies
 * unchanged) of a corpus of n units, timed whole minus the wait for its
 * signatures, beside the bare hand path on the same database in the same
 * run: the backup as a shell pipeline plus one hand-written transaction
 * making the same kind of change to 10 other draft units. Measured at three
 * corpus sizes, so the rows show what grows with the corpus rather than
 * with the cut.
 */

const TARGET = 'bench-small-cut';
const PLAN = 10;
/** The cut enacts units 1–10; the hand path enacts 11–20, so the run still finds its units as drafts. */
const CUT_UNITS = Array.from({ length: PLAN }, (_, i) => benchKey(i + 1));
const HAND_UNITS = Array.from({ length: PLAN }, (_, i) => benchKey(PLAN + i + 1));

/** The hand-written change: each unit's state and updated_at, and its lifecycle row, in one transaction. */
const HAND_WRITES = [
  `UPDATE public.information_unit SET state = 'enacted', updated_at = now()
    WHERE corpus = $1 AND key = ANY($2::text[]) AND state = 'draft'`,
  `INSERT INTO public.iu_lifecycle_log (unit_id, from_state, to_state, version, run_id, actor)
   SELECT id, 'draft', 'enacted', current_version, 'floor', 'floor'
     FROM public.information_unit WHERE corpus = $1 AND key = ANY($2::text[])`,
];

/** Times the hand-written transaction on a connection opened (and used once) beforehand. */
async function timeHandWrites(pool: Pool): Promise<number> {
  const client = await pool.connect();
  try {
    await client.query('SELECT 1');
    const { seconds } = await timed(async () => {
      await client.query('BEGIN');
      for (const sql of HAND_WRITES) await client.query(sql, [BENCH_CORPUS, HAND_UNITS]);
      await client.query('COMMIT');
    });
    return seconds;
  } finally {
    client.release();
  }
}

interface CorpusRun {
  corpus: number;
  pipeline: { seconds: number; bytes: number };
  sql: number;
  run: TimedRun;
}

/** One corpus size on a fresh database: the bare pipeline, the hand-written SQL, then the live run. */
async function measureCorpus(corpus: number, log: (line: string) => void): Promise<CorpusRun> {
  const url = scratchUrl(`smallcut${corpus}`);
  const dir = mkdtempSync(join(tmpdir(), 'cutter-bench-small-cut-'));
  try {
    await seedLiveBenchDatabase(url, corpus, { name: TARGET, maxUnits: PLAN, allowedTransitions: ['draft->enacted'], notes: 'small-cut benchmark' });
    await settleCorpus(url);
    const snapshot = join(dir, 'plan.ndjson');
    writeFileSync(snapshot, CUT_UNITS.map((key) => `${JSON.stringify({ key, state: 'enacted', body: benchBody(key, 1) })}\n`).join(''));
    return await withLiveFleet(dir, url, `bench-small-cut-${process.pid}-${corpus}`, async (live) => {
      const pipeline = await timeSameSettingsPipeline(url, live.backupKey, join(dir, 'bare.pgdump.gpg'));
      const sql = await timeHandWrites(live.pool);
      const run = await timeSnapshotRun(live, TARGET, snapshot, PLAN);
      log(
        `${fmt(corpus)}: run ${run.seconds.toFixed(2)} s ${JSON.stringify(roundedPhases(run.phases))}; ` +
          `pipeline ${pipeline.seconds.toFixed(2)} s + SQL ${(sql * 1000).toFixed(1)} ms`,
      );
      return { corpus, pipeline, sql, run };
    });
  } finally {
    await dropScratch(url);
    rmSync(dir, { recursive: true, force: true });
  }
}

const fmt = (n: number) => n.toLocaleString('en-US');
const NOT_BACKUP = ['backup'];

/** The whole run at one size beside the hand path at that size. */
function corpusFigure(r: CorpusRun, headline: boolean, growthNote: string): Figure {
  const floor = r.pipeline.seconds + r.sql;
  const ratio = r.run.seconds / floor;
  return {
    name: `live run enacting ${PLAN} units of a ${fmt(r.corpus)}-unit corpus, whole run minus the wait for signatures${headline ? '' : ' (cost growth)'}`,
    value: `${r.run.seconds.toFixed(2)} s`,
    floor: `${floor.toFixed(2)} s (bare backup pipeline ${r.pipeline.seconds.toFixed(2)} s + hand-written SQL ${(r.sql * 1000).toFixed(1)} ms, same database, same run)`,
    ratio,
    goal: headline ? '≤ 1.5×' : 'reported',
    met: headline ? ratio <= 1.5 : null,
    notes:
      `cutter = one live run through every phase with an in-process fleet, enacting units 1–${PLAN} (draft → enacted, bodies unchanged): ` +
      `enqueue → paused at SG_1, plus the approval (SG_1 + EXEC by a local sovereign, through the real submit path) submitted → ` +
      `succeeded; the wait for signatures and the signing are left out, as in the revert row. Its phases: ${phaseList(r.run.phases)}; ` +
      `outside the phases ${outsidePhases(r.run).toFixed(2)} s (the enqueue, the hand-offs between jobs, the 20 ms status polling). ` +
      `floor = the bare hand path on the same database just before the run: \`pg_dump -Fc --compress=1 | gpg --compress-algo none ` +
      `--encrypt -r FPR > file\` (cutter's own compression settings; ${(r.pipeline.bytes / 2 ** 20).toFixed(1)} MiB), then one committed ` +
      `transaction on an open connection making the same change to ${PLAN} other draft units (${PLAN + 1}–${2 * PLAN}, so the run still ` +
      `finds its own as drafts): UPDATE information_unit SET state, updated_at and INSERT their ${PLAN} iu_lifecycle_log rows. The corpus ` +
      `was settled first (VACUUM ANALYZE, checkpoint). Cutter's backup phase took ` +
      `${((r.run.phases['backup'] ?? Number.NaN) / r.pipeline.seconds).toFixed(2)}× the pipeline; the phases other than backup took ` +
      `${phaseSum(r.run.phases, NOT_BACKUP).toFixed(2)} s.${growthNote}`,
  };
}

/** How the phases other than backup grow from the smallest corpus to the largest. */
function growthFigure(small: CorpusRun, big: CorpusRun): Figure {
  const b = phaseSum(big.run.phases, NOT_BACKUP);
  const s = phaseSum(small.run.phases, NOT_BACKUP);
  const ratio = b / s;
  return {
    name: `growth of the phases other than backup of that ${PLAN}-unit live run, corpus ${fmt(small.corpus)} → ${fmt(big.corpus)}`,
    value: `${b.toFixed(2)} s at ${fmt(big.corpus)}`,
    floor: `${s.toFixed(2)} s (the same phases at ${fmt(small.corpus)}, same bench run)`,
    ratio,
    goal: `phases other than backup grow ≤ 2× from ${fmt(small.corpus)} to ${fmt(big.corpus)}`,
    met: ratio <= 2,
    notes:
      `Sum of the run_phase seconds of precheck, grant-probe, discover, cutplan, execute and verify (the backup, which must read the ` +
      `whole database, and the gate's wait for signatures left out) of the runs in the rows above. At ${fmt(small.corpus)}: ` +
      `${phaseList(small.run.phases, NOT_BACKUP)}. At ${fmt(big.corpus)}: ${phaseList(big.run.phases, NOT_BACKUP)}. The cut is the ` +
      `same ${PLAN} units at every size, so what grows here is work over the whole corpus, not over the cut.`,
  };
}

export const smallCutBench: Bench = {
  name: 'small-cut',
  async run({ quick, log }): Promise<Figure[]> {
    const sizes = quick ? [1_000, 10_000, 100_000] : [10_000, 100_000, 1_000_000];
    const runs: CorpusRun[] = [];
    for (const corpus of sizes) runs.push(await measureCorpus(corpus, log));
    const small = runs[0];
    const big = runs[runs.length - 1];
    if (!small || !big) return [];
    const growth = growthFigure(small, big);
    const growthNote =
      ` Phases other than backup: ${phaseSum(small.run.phases, NOT_BACKUP).toFixed(2)} s at ${fmt(small.corpus)}, ` +
      `${phaseSum(big.run.phases, NOT_BACKUP).toFixed(2)} s at ${fmt(big.corpus)}: ${(growth.ratio ?? Number.NaN).toFixed(2)}× (goal ≤ 2×, next row).`;
    return [...runs.map((r) => corpusFigure(r, r === big, r === big ? growthNote : '')), growth];
  },
};
