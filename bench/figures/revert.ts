import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { enqueueRevert } from '../../producers/flow/enqueue-revert.js';
import type { Bench, Figure } from '../harness.js';
import { seedLiveBenchDatabase } from '../support/bench-database.js';
import { withLiveFleet } from '../support/live-run.js';
import { PHASES_TIMED, outsidePhases, phaseList, roundedPhases, timeLiveRun, timeSnapshotRun, type TimedRun } from '../support/timed-run.js';
import { writePlanSnapshot } from './execute.js';
import { dropScratch, scratchUrl } from './seed.js';

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

/** The cut and its revert on one fresh database. */
async function measure(corpus: number, plan: number, log: (line: string) => void): Promise<{ cut: TimedRun; revert: TimedRun }> {
  const url = scratchUrl(`revert${plan}`);
  const dir = mkdtempSync(join(tmpdir(), 'cutter-bench-revert-'));
  try {
    await seedLiveBenchDatabase(url, corpus, { name: TARGET, maxUnits: plan, allowedTransitions: ['new->draft', 'draft->enacted', 'revise'], notes: 'revert benchmark' });
    const snapshot = join(dir, 'plan.ndjson');
    await writePlanSnapshot(snapshot, corpus, plan);
    return await withLiveFleet(dir, url, `bench-revert-${process.pid}-${plan}`, async (live) => {
      const cut = await timeSnapshotRun(live, TARGET, snapshot, plan);
      log(`${plan}/${corpus}: cut ${cut.seconds.toFixed(2)} s ${JSON.stringify(roundedPhases(cut.phases))}`);
      const revert = await timeLiveRun(
        live,
        async () => {
          const queues = { pool: live.pool, redis: live.redis, prefix: live.prefix };
          const { runId } = await enqueueRevert(queues, { revertOf: cut.runId, mode: 'live', skipDrifted: false, operator: 'bench', approvalWindowS: 3600 });
          return runId;
        },
        plan,
      );
      log(`${plan}/${corpus}: revert ${revert.seconds.toFixed(2)} s ${JSON.stringify(roundedPhases(revert.phases))}`);
      return { cut, revert };
    });
  } finally {
    await dropScratch(url);
    rmSync(dir, { recursive: true, force: true });
  }
}

const fmt = (n: number) => n.toLocaleString('en-US');

/** Revert minus cut, phase by phase, and what is left outside the phases (enqueue, hand-offs). */
function gapList(cut: TimedRun, revert: TimedRun): string {
  const phases = PHASES_TIMED.map((p) => `${p} ${((revert.phases[p] ?? 0) - (cut.phases[p] ?? 0)).toFixed(2)} s`).join(', ');
  const outside = outsidePhases(revert) - outsidePhases(cut);
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
          `database (the cut's new versions and ${fmt(plan)} lifecycle rows are in the backup and its table fingerprints); its discover judges ` +
          `each unit (in temporary tables it analyzes) before the same staging a file gets, and \`cutter revert\` judges once more before it ` +
          `enqueues (outside the phases); its cutplan's items are each checked against the cut's by the database (trigger ` +
          `cut_change_item_revert); its verify adds the check against the cut's pre-states.`,
      },
    ];
  },
};
