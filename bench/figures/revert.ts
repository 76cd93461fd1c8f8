import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { config, type Config } from '../../shared/config.js';
import { createPool, type Pool } from '../../shared/db/pool.js';
import type { LocalSovereign } from '../../shared/demo/sovereign.js';
import { migrate } from '../../shared/deploy/migrate.js';
import { createRedis } from '../../shared/redis.js';
import { enqueueRun } from '../../producers/flow/enqueue.js';
import { enqueueRevert } from '../../producers/flow/enqueue-revert.js';
import { startFleet } from '../../workers/fleet.js';
import type { Bench, Figure } from '../harness.js';
import { benchLiveSettings, phaseSeconds, untilStatus } from '../support/live-run.js';
import { writePlanSnapshot } from './execute.js';
import { dropScratch, scratchUrl } from './seed.js';
import { BENCH_CORPUS, seedBenchCorpus } from './snapshot-data.js';

/**
 * A live revert of a p-unit cut of a 2p-unit corpus (`cutter revert`,
 * docs/undo.md), end to end minus the wait for signatures, beside the cut it
 * reverts measured the same way in the same bench run: both go through
 * every phase with the real fleet, each approved with SG_1 + EXEC by a local
 * sovereign through the real submit path. The cut is the execute
 * benchmark's plan (90% of the items enact a draft, every 10th of those also
 * gets a new body, 10% create new drafts); its revert puts each enacted unit
 * back to draft, gives each revised unit a new version with its old body and
 * retires each created one.
 */

const TARGET = 'bench-revert';

interface Timed {
  runId: string;
  /** Enqueue → paused at SG_1, plus approval submitted → succeeded. */
  seconds: number;
  phases: Record<string, number>;
}

interface LiveDeps {
  pool: Pool;
  cfg: Config;
  redis: ReturnType<typeof createRedis>;
  sovereign: LocalSovereign;
}

/** Times a live run from its enqueue to its end, leaving out the time it waits for (and takes to get) its signatures. */
async function timeLiveRun(deps: LiveDeps, enqueue: () => Promise<string>, expectedLogRows: number): Promise<Timed> {
  const t0 = process.hrtime.bigint();
  const runId = await enqueue();
  const paused = await untilStatus(deps.pool, runId, ['awaiting_approval', 'failed', 'expired']);
  const t1 = process.hrtime.bigint();
  if (paused !== 'awaiting_approval') throw new Error(`bench run ${runId} ended ${paused} before approval`);
  await deps.sovereign.approve({ cfg: deps.cfg, pool: deps.pool, redis: deps.redis }, runId);
  const t2 = process.hrtime.bigint();
  const ended = await untilStatus(deps.pool, runId, ['succeeded', 'failed', 'expired']);
  const t3 = process.hrtime.bigint();
  if (ended !== 'succeeded') {
    const { rows } = await deps.pool.query<{ error_message: string | null }>('SELECT error_message FROM cutter_governance.run WHERE run_id = $1', [runId]);
    throw new Error(`bench run ${runId} ended ${ended}: ${rows[0]?.error_message ?? ''}`);
  }
  const log = await deps.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM public.iu_lifecycle_log WHERE run_id = $1', [runId]);
  if (log.rows[0]?.n !== expectedLogRows) throw new Error(`bench run ${runId} wrote ${log.rows[0]?.n ?? 0} log rows, expected ${expectedLogRows}`);
  return { runId, seconds: Number(t1 - t0 + (t3 - t2)) / 1e9, phases: await phaseSeconds(deps.pool, runId) };
}

/** The cut and its revert on one fresh database. */
async function measure(corpus: number, plan: number, log: (line: string) => void): Promise<{ cut: Timed; revert: Timed }> {
  const url = scratchUrl(`revert${plan}`);
  const dir = mkdtempSync(join(tmpdir(), 'cutter-bench-revert-'));
  const base = config();
  const redis = createRedis(base.REDIS_URL);
  try {
    await migrate(url, { execRole: base.CUTTER_EXEC_ROLE });
    const seedPool = createPool(url);
    await seedBenchCorpus(seedPool, corpus);
    await seedPool.query(
      `INSERT INTO cutter_governance.target_registry (name, corpus, owner, protected, max_units, allowed_transitions, registered_by, notes)
       VALUES ($1, $2, 'bench', false, $3, ARRAY['new->draft', 'draft->enacted', 'revise'], 'bench', 'revert benchmark')`,
      [TARGET, BENCH_CORPUS, plan],
    );
    await seedPool.end();
    const snapshot = join(dir, 'plan.ndjson');
    await writePlanSnapshot(snapshot, corpus, plan);
    const prefix = `bench-revert-${process.pid}-${plan}`;
    const { cfg, sovereign } = await benchLiveSettings(dir, { url, prefix });
    const pool = createPool(url, { max: 4 });
    const fleet = await startFleet({ cfg, log: pino({ level: 'silent' }) });
    const deps = { pool, cfg, redis, sovereign };
    const queues = { pool, redis, prefix };
    try {
      const cut = await timeLiveRun(deps, async () => {
        const { runId } = await enqueueRun(queues, { target: TARGET, snapshotPath: snapshot, mode: 'live', operator: 'bench', approvalWindowS: 3600 });
        return runId;
      }, plan);
      log(`${plan}/${corpus}: cut ${cut.seconds.toFixed(2)} s ${JSON.stringify(rounded(cut.phases))}`);
      const revert = await timeLiveRun(deps, async () => {
        const { runId } = await enqueueRevert(queues, { revertOf: cut.runId, mode: 'live', skipDrifted: false, operator: 'bench', approvalWindowS: 3600 });
        return runId;
      }, plan);
      log(`${plan}/${corpus}: revert ${revert.seconds.toFixed(2)} s ${JSON.stringify(rounded(revert.phases))}`);
      return { cut, revert };
    } finally {
      await fleet.close();
      await pool.end();
    }
  } finally {
    redis.disconnect();
    await dropScratch(url);
    rmSync(dir, { recursive: true, force: true });
  }
}

const rounded = (phases: Record<string, number>) => Object.fromEntries(Object.entries(phases).map(([p, s]) => [p, Number(s.toFixed(2))]));
const fmt = (n: number) => n.toLocaleString('en-US');

const PHASES_TIMED = ['precheck', 'grant-probe', 'discover', 'cutplan', 'backup', 'execute', 'verify'];

/** The phases of a run as the notes list them (the gate's wake is left out: it is the wait for signatures). */
function phaseList(phases: Record<string, number>): string {
  return PHASES_TIMED.filter((p) => Number.isFinite(phases[p])).map((p) => `${p} ${(phases[p] ?? 0).toFixed(2)} s`).join(', ');
}

/** Revert minus cut, phase by phase, and what is left outside the phases (enqueue, hand-offs). */
function gapList(cut: Timed, revert: Timed): string {
  const sum = (t: Timed) => PHASES_TIMED.reduce((n, p) => n + (Number.isFinite(t.phases[p]) ? (t.phases[p] ?? 0) : 0), 0);
  const phases = PHASES_TIMED.map((p) => `${p} ${((revert.phases[p] ?? 0) - (cut.phases[p] ?? 0)).toFixed(2)} s`).join(', ');
  const outside = revert.seconds - sum(revert) - (cut.seconds - sum(cut));
  return `${phases}; outside the phases ${outside.toFixed(2)} s`;
}

export const revertBench: Bench = {
  name: 'revert',
  async run({ quick, log }): Promise<Figure[]> {
    const { corpus, plan } = quick ? { corpus: 20_000, plan: 10_000 } : { corpus: 200_000, plan: 100_000 };
    const { cut, revert } = await measure(corpus, plan, log);
    const ratio = revert.seconds / cut.seconds;
    return [
      {
        name: `live revert of a ${fmt(plan)}-unit cut (corpus ${fmt(corpus)}), end to end minus the wait for signatures`,
        value: `${revert.seconds.toFixed(2)} s`,
        floor: `${cut.seconds.toFixed(2)} s (the cut it reverts, same bench run, measured the same way)`,
        ratio,
        goal: '≤ 1.5× the cut',
        met: ratio <= 1.5,
        notes:
          `Both runs: enqueue → paused at SG_1, plus the approval submitted → succeeded (the wait for signatures and the signing left out), ` +
          `each through every phase with an in-process fleet. The revert computes its input from the cut's items, the unit versions and the ` +
          `lifecycle log (a COPY out of PostgreSQL staged by the same code as a snapshot file), then plans, backs up, applies and verifies it ` +
          `like any run, and its verify also proves each unit is as before the cut. Cut: ${phaseList(cut.phases)}. ` +
          `Revert: ${phaseList(revert.phases)}. Gap (revert − cut): ${gapList(cut, revert)}. Where it goes: the revert works on a larger ` +
          `database (the cut's new versions and ${fmt(plan)} lifecycle rows are in every fingerprint and in the backup); its discover judges ` +
          `each unit (in temporary tables it analyzes) before the same staging a file gets, and \`cutter revert\` judges once more before it ` +
          `enqueues (outside the phases); its cutplan's items are each checked against the cut's by the database (trigger ` +
          `cut_change_item_revert); its verify adds the check against the cut's pre-states.`,
      },
    ];
  },
};
