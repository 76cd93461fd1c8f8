import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { config, parseConfig } from '../../shared/config.js';
import { createPool } from '../../shared/db/pool.js';
import { migrate } from '../../shared/deploy/migrate.js';
import { registerDemoWorkTarget, seedDemo } from '../../shared/demo/seed.js';
import { PHASES } from '../../shared/jobs/catalog.js';
import { createRedis } from '../../shared/redis.js';
import type { Bench, Figure } from '../harness.js';
import { disconnectAll, summary, WARMUP_REQUESTS, type Harness, type Side } from '../support/approval-harness.js';
import { obliterateQueues } from '../support/live-run.js';
import { openCutter } from './approval-cutter.js';
import { FLOOR_QUEUES, openFloor } from './approval-floor.js';
import { dropScratch, scratchUrl } from './seed.js';

/**
 * Approval latency: from the POST that completes the approvals (the EXEC
 * grant after an SG_1) to the execute job becoming active, over a
 * lightweight flow (execute ← approval-gate [delayed] ← cutplan) with the
 * real board and a real worker fleet (approval-cutter.ts). Reported without
 * a goal (an approval is a human act, its latency no target), beside its
 * bare floor measured in the same run (approval-floor.ts). Also: invalid
 * approvals (a signature by another key) refused per second, beside a bare
 * handler that parses the same JSON and answers 403.
 */

/** Untimed rounds per side first, so first connections and cold code are not what p95 reads. */
const WARMUP_ROUNDS = 3;

async function setUp(): Promise<Harness> {
  const url = scratchUrl('approval');
  await migrate(url, { execRole: config().CUTTER_EXEC_ROLE });
  const pool = createPool(url, { max: 4 });
  const dir = mkdtempSync(join(tmpdir(), 'cutter-bench-keys-'));
  await seedDemo(pool, 'bench', { sovereignDir: join(dir, 'demo-sovereign'), execRole: config().CUTTER_EXEC_ROLE });
  await registerDemoWorkTarget(pool, 'bench');
  const prefix = `bench-appr-${process.pid}`;
  const cfg = parseConfig({
    ...process.env,
    DATABASE_URL: url,
    CUTTER_QUEUE_PREFIX: prefix,
    SOVEREIGN_KEYS: join(dir, 'public'),
    SOVEREIGN_QUORUM: '1',
    CUTTER_OPERATOR: 'bench-operator',
    LOG_LEVEL: 'silent',
  });
  return {
    cfg,
    pool,
    prefix,
    dir,
    close: async () => {
      await pool.end();
      const redis = createRedis(cfg.REDIS_URL);
      await obliterateQueues(redis, prefix, [...PHASES, ...FLOOR_QUEUES]);
      redis.disconnect();
      await dropScratch(url);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Runs the sides' rounds interleaved (the order turned each round, so no side
 * always follows the other), rounds in all.
 */
async function interleave(sides: Side[], rounds: number): Promise<void> {
  for (let r = 0; r < rounds; r += 1) {
    const order = r % 2 === 0 ? sides : [...sides].reverse();
    for (const side of order) await side.round();
  }
}

const ms = (m: { median: number; p95: number }) => `${m.median.toFixed(1)} ms, p95 ${m.p95.toFixed(1)} ms`;

/** The approval latency and refusal throughput figures, each beside its floor. */
export const approvalBench: Bench = {
  name: 'approval',
  async run({ quick, log }): Promise<Figure[]> {
    const runs = quick ? 20 : 60;
    const h = await setUp();
    const sides: Side[] = [];
    try {
      // The floor posts a body of the same size as an envelope.
      const body = JSON.stringify({ document: 'x'.repeat(330), signature: 'y'.repeat(88), key_id: '0123456789abcdef' });
      const cutterSide = await openCutter(h);
      const floorSide = await openFloor(h, body);
      sides.push(cutterSide, floorSide);
      await interleave(sides, WARMUP_ROUNDS);
      for (const side of sides) {
        side.measured.ms.length = 0;
        side.measured.answered.length = 0;
      }
      await interleave(sides, runs);
      log(`${runs} rounds of cutter and floor, interleaved, after ${WARMUP_ROUNDS} untimed`);
      const c = summary(cutterSide.measured.ms);
      const f = summary(floorSide.measured.ms);
      const cAnswer = summary(cutterSide.measured.answered);
      const fAnswer = summary(floorSide.measured.answered);
      const refusedPerS = await cutterSide.refusedPerS(runs * 40);
      const floorRefusedPerS = await floorSide.refusedPerS(runs * 40);
      log(`cutter ${ms(c)}; floor ${ms(f)}; ratio p50 ${(c.median / f.median).toFixed(3)}, p95 ${(c.p95 / f.p95).toFixed(3)}`);
      log(`POST answered: cutter ${ms(cAnswer)}; floor ${ms(fAnswer)}`);
      log(`refused ${refusedPerS.toFixed(0)}/s; floor ${floorRefusedPerS.toFixed(0)}/s`);
      return [
        {
          name: `approval POST → execute job active (median, p95 over ${runs} runs)`,
          value: ms(c),
          floor: `${ms(f)} (bare express: INSERT one row + promote, to the parent job active)`,
          ratio: c.median / f.median,
          goal: 'reported',
          met: null,
          notes:
            `Ratio of the medians; of the p95s ${(c.p95 / f.p95).toFixed(3)}. ` +
            'cutter = POST of the EXEC grant that completes SG_1 + EXEC → the execute job active, through the board\'s real endpoint and ' +
            'a real worker fleet serving the approval gate; lightweight flow execute ← approval-gate ← cutplan, no backup in between, ' +
            'the bench\'s bare workers standing in for cutplan and execute. ' +
            `The POST is answered after ${ms(cAnswer)} against the floor's ${ms(fAnswer)}; the rest is the gate's job and the BullMQ hand-offs. ` +
            'No goal: an approval is a human act, so its latency is reported beside its floor, not chased. ' +
            `The two sides take their rounds in turn, after ${WARMUP_ROUNDS} untimed each, so both are measured across the same stretch of the machine's time.`,
        },
        {
          name: 'invalid approvals refused (forged signature, 16 concurrent clients)',
          value: `${refusedPerS.toFixed(0)} req/s`,
          floor: `${floorRefusedPerS.toFixed(0)} req/s (bare express: parse JSON, answer 403)`,
          ratio: floorRefusedPerS / refusedPerS,
          goal: '≥ 1,000/s',
          met: refusedPerS >= 1000,
          notes:
            '16 concurrent loopback clients in a process of their own (so they do not share the server\'s event loop), on the same 2 cores as the server; ' +
            `timed after ${WARMUP_REQUESTS.toLocaleString('en')} untimed requests on each side, so the rate is the steady one, not that of code still being compiled. ` +
            'The rate limit (60/min per address by default) is raised for this measurement; in service it answers 429 long before these rates.',
        },
      ];
    } finally {
      for (const side of sides) await side.close();
      disconnectAll();
      await h.close();
    }
  },
};
