import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FlowProducer, Queue, Worker, type Job } from 'bullmq';
import { pino } from 'pino';
import { startBoardServer } from '../../board/server.js';
import { serialiseApprovalDocument } from '../../shared/approval/document.js';
import { buildDocument, generateSovereignKey, readPrivateKey, signDocument } from '../../shared/approval/sign.js';
import { config, parseConfig } from '../../shared/config.js';
import { migrate } from '../../shared/deploy/migrate.js';
import { createPool, type Pool } from '../../shared/db/pool.js';
import { registerDemoWorkTarget, seedDemo } from '../../shared/demo/seed.js';
import { PHASES, type Phase } from '../../shared/jobs/catalog.js';
import { createRedis } from '../../shared/redis.js';
import { phaseRunner } from '../../workers/phase-runner.js';
import { processApprovalGate } from '../../workers/approval-gate/process.js';
import type { Bench, Figure } from '../harness.js';
import { connection, disconnectAll, post, summary, throughput, untilDelayed, WARMUP_REQUESTS, WINDOW_MS, type Harness, type Measured, type Side } from '../support/approval-harness.js';
import { obliterateQueues } from '../support/live-run.js';
import { floorQueues, openFloor } from './approval-floor.js';
import { dropScratch, scratchUrl } from './seed.js';

/**
 * Approval latency: from the POST that completes the approvals (the EXEC
 * grant after an SG_1) to the next job after the gate becoming active, over
 * a lightweight flow (execute ← approval-gate [delayed] ← cutplan) with the
 * real endpoint, release and gate processor. The floor, in the same run: a
 * bare express handler that inserts one row and promotes a delayed job,
 * timed to the next job (its parent) becoming active; the bound (the floor
 * plus the gate's mandated check and write); and the design bound (the floor
 * plus every step the contract requires, each done minimally:
 * approval-design-bound.ts). The four sides stay open and take their rounds
 * in turn, so each is measured across the same stretch of the machine's time. Also: invalid approvals (a signature by
 * another key) refused per second, beside a bare handler that parses the
 * same JSON and answers 403.
 */

const silent = pino({ level: 'silent' });

/** A run paused at SG_1 as cutplan leaves it: run row, change set, completed cutplan phase. */
async function insertPausedRun(pool: Pool, runId: string, planSha256: string): Promise<void> {
  await pool.query(
    `INSERT INTO cutter_governance.run (run_id, target, corpus, mode, operator, approval_window_s, status)
     VALUES ($1, 'icx-work', 'ICX-WORK', 'live', 'bench-operator', 3600, 'awaiting_approval')`,
    [runId],
  );
  await pool.query(
    `INSERT INTO cutter_governance.cut_change_set (run_id, target, corpus, plan_sha256, unit_count, by_op, by_transition)
     VALUES ($1, 'icx-work', 'ICX-WORK', $2, 0, '{}', '{}')`,
    [runId, planSha256],
  );
  await pool.query(
    `INSERT INTO cutter_governance.run_phase (run_id, phase, state, finished_at) VALUES ($1, 'cutplan', 'completed', now())`,
    [runId],
  );
}

async function setUp(): Promise<Harness> {
  const url = scratchUrl('approval');
  await migrate(url, { execRole: config().CUTTER_EXEC_ROLE });
  const pool = createPool(url, { max: 4 });
  await seedDemo(pool, 'bench');
  await registerDemoWorkTarget(pool, 'bench');
  const dir = mkdtempSync(join(tmpdir(), 'cutter-bench-keys-'));
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
      await obliterateQueues(redis, prefix, [...PHASES, ...floorQueues('floor'), ...floorQueues('gate-bound'), ...floorQueues('design-bound')]);
      redis.disconnect();
      await dropScratch(url);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}


/** cutter: the real endpoint, release and gate; the execute stub marks when it becomes active. */
async function openCutter(h: Harness): Promise<Side<Measured>> {
  const key = generateSovereignKey();
  mkdirSync(join(h.dir, 'public'), { recursive: true });
  writeFileSync(join(h.dir, 'public', 'bench-sovereign.pem'), key.publicPem);
  const privateKey = readPrivateKey(key.privatePem, 'bench key');
  const other = readPrivateKey(generateSovereignKey().privatePem, 'other key');
  const board = await startBoardServer({
    cfg: h.cfg,
    log: silent,
    port: 0,
    host: '127.0.0.1',
    options: { approvalRateLimit: { windowMs: 60_000, limit: 1_000_000 }, sweepIntervalMs: 3_600_000 },
  });
  const redis = createRedis(h.cfg.REDIS_URL, 'worker');
  const queues = Object.fromEntries(PHASES.map((p) => [p, new Queue(p, { connection: redis, prefix: h.prefix })])) as Record<Phase, Queue>;
  const deps = { pool: h.pool, cfg: h.cfg, log: silent, redis, queues };
  const active = new Map<string, (t: number) => void>();
  const workers = [
    new Worker('cutplan', () => Promise.resolve({}), { connection: connection(h.cfg), prefix: h.prefix }),
    new Worker('approval-gate', phaseRunner('approval-gate', processApprovalGate, deps), { connection: connection(h.cfg), prefix: h.prefix }),
    new Worker(
      'execute',
      async (job: Job<{ runId: string }>) => {
        active.get(job.data.runId)?.(performance.now());
        // Ends the run and the switch, so the next run's EXEC grant finds the switch free.
        await h.pool.query(`UPDATE cutter_governance.run SET status = 'succeeded' WHERE run_id = $1`, [job.data.runId]);
        await h.pool.query(`SELECT cutter_governance.disarm_execution('bench')`);
        return {};
      },
      { connection: connection(h.cfg), prefix: h.prefix },
    ),
  ];
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  const flows = new FlowProducer({ connection: redis, prefix: h.prefix });
  const measured: Measured = { ms: [], answered: [] };
  const pausedRun = async (runId: string) => {
    const plan = randomBytes(32).toString('hex');
    await insertPausedRun(h.pool, runId, plan);
    return { runId, target: 'icx-work', planSha256: plan, maxUnits: 1, transitions: ['draft->enacted' as const] };
  };
  let i = 0;
  return {
    measured,
    round: async () => {
      const runId = `bench-${process.pid}-${i++}`;
      const req = await pausedRun(runId);
      const executeDone = new Promise<void>((resolve) => workers[2]?.once('completed', () => resolve()));
      await flows.add({
        name: 'execute', queueName: 'execute', data: { runId }, opts: { jobId: `${runId}.execute` },
        children: [{
          name: 'approval-gate', queueName: 'approval-gate', data: { runId }, opts: { jobId: `${runId}.approval-gate`, delay: WINDOW_MS, failParentOnFailure: true },
          children: [{ name: 'cutplan', queueName: 'cutplan', data: { runId }, opts: { jobId: `${runId}.cutplan` } }],
        }],
      });
      await untilDelayed(queues['approval-gate'], `${runId}.approval-gate`);
      const sign = (gate: 'SG_1' | 'EXEC') => JSON.stringify(signDocument(serialiseApprovalDocument(buildDocument({ ...req, gate }, { ttlS: 3600 })), privateKey));
      const url = `${board.url}/runs/${runId}/approvals`;
      if ((await post(url, sign('SG_1'))) !== 201) throw new Error('SG_1 refused');
      const exec = sign('EXEC');
      const became = new Promise<number>((resolve) => active.set(runId, resolve));
      const t0 = performance.now();
      if ((await post(url, exec)) !== 201) throw new Error('EXEC refused');
      measured.answered.push(performance.now() - t0);
      measured.ms.push((await became) - t0);
      await executeDone;
    },
    // Invalid: a signature by another key over a well-formed document for a paused run.
    refusedPerS: async (count) => {
      const req = await pausedRun(`bench-${process.pid}-refuse`);
      const doc = serialiseApprovalDocument(buildDocument({ ...req, gate: 'SG_1' }, { ttlS: 3600 }));
      const forged = JSON.stringify({ ...signDocument(doc, other), key_id: key.keyId });
      return throughput(`${board.url}/runs/${req.runId}/approvals`, forged, count, 16, 403);
    },
    close: async () => {
      await flows.close();
      await Promise.all(workers.map((w) => w.close()));
      await Promise.all(Object.values(queues).map((q) => q.close()));
      redis.disconnect();
      await board.close();
    },
  };
}

/**
 * Runs the sides' rounds interleaved (the order turned each round, so no side
 * always follows the same one), runs rounds in all.
 */
async function interleave(sides: Side<Measured>[], rounds: number): Promise<void> {
  for (let r = 0; r < rounds; r += 1) {
    const order = r % 2 === 0 ? sides : [...sides].reverse();
    for (const side of order) await side.round();
  }
}

/** The approval latency and refusal throughput figures, each beside its floor. */
export const approvalBench: Bench = {
  name: 'approval',
  async run({ quick, log }): Promise<Figure[]> {
    const runs = quick ? 20 : 60;
    const h = await setUp();
    const sides: Side<Measured>[] = [];
    try {
      // The floor posts a body of the same size as an envelope.
      const body = JSON.stringify({ document: 'x'.repeat(330), signature: 'y'.repeat(88), key_id: '0123456789abcdef' });
      const cutterSide = await openCutter(h);
      const floorSide = await openFloor(h, body, 'floor');
      const boundSide = await openFloor(h, body, 'gate-bound');
      const designSide = await openFloor(h, body, 'design-bound');
      sides.push(cutterSide, floorSide, boundSide, designSide);
      await interleave(sides, runs);
      log(`${runs} rounds of cutter, floor, bound and design bound, interleaved`);
      const cutter = { ...cutterSide.measured, refusedPerS: await cutterSide.refusedPerS(runs * 40) };
      const floor = floorSide.measured;
      const bound = boundSide.measured;
      const design = summary(designSide.measured.ms);
      const floorRefusedPerS = await floorSide.refusedPerS(runs * 40);
      const c = summary(cutter.ms);
      const f = summary(floor.ms);
      const b = summary(bound.ms);
      /** A reported row: a path beside the same bare floor. */
      const besideFloor = (name: string, m: { median: number; p95: number }, goal: string, notes: string): Figure => ({
        name,
        value: `${m.median.toFixed(1)} ms, p95 ${m.p95.toFixed(1)} ms`,
        floor: `${f.median.toFixed(1)} ms, p95 ${f.p95.toFixed(1)} ms (the same bare floor)`,
        ratio: m.median / f.median,
        goal,
        met: null,
        notes,
      });
      const insert = summary(floor.insertMs).median;
      const cAnswer = summary(cutter.answered).median;
      const fAnswer = summary(floor.answered).median;
      const gap =
        `Gap (medians, same run): the POST is answered after ${cAnswer.toFixed(1)} ms against the floor's ${fAnswer.toFixed(1)} ms ` +
        '(signature and binding checked against the run as the board read it for the SG_1 before (its frozen binding is kept: no read), ' +
        'then one call of store_approval: the run locked, its status, window and any reuse of nonce or key checked, the kill switch (EXEC), ' +
        "the decision, the audit row, and the run's gate_handoff (the run row and its unconsumed approvals) read back; the stored SG_1 re-verified, " +
        'the handoff left in Redis and the gate promoted by its id, one after the other on one connection); ' +
        "then the gate's job, where the floor's does nothing (the handoff taken from Redis, no read of PostgreSQL; the trusted keys re-read, both signatures re-verified; one call of " +
        'open_gate that checks under the run\'s lock that PostgreSQL still holds exactly what was judged, claims and completes the phase, ' +
        'consumes the approvals and writes their audit row in one commit). ' +
        `The floor's one INSERT, a statement and its commit, took ${insert.toFixed(2)} ms here; cutter's path waits on 2 round trips to PostgreSQL ` +
        'in sequence (1 in the POST, 1 in the gate), both commits that wait for the WAL flush, as the bound row below does. ' +
        'Beside the bound it verifies four signatures (the new one, the stored SG_1 at the release, both again in the gate) and its ' +
        'statements do more than one INSERT each. The rest is the same BullMQ hand-offs the floor makes.';
      log(`cutter median ${c.median.toFixed(1)} ms p95 ${c.p95.toFixed(1)} ms; floor median ${f.median.toFixed(1)} ms p95 ${f.p95.toFixed(1)} ms`);
      log(`gate bound median ${b.median.toFixed(1)} ms p95 ${b.p95.toFixed(1)} ms`);
      log(`design bound median ${design.median.toFixed(1)} ms p95 ${design.p95.toFixed(1)} ms`);
      log(`refused ${cutter.refusedPerS.toFixed(0)}/s; floor ${floorRefusedPerS.toFixed(0)}/s`);
      return [
        {
          name: `approval → next job active (median, p95 over ${runs} runs)`,
          value: `${c.median.toFixed(1)} ms, p95 ${c.p95.toFixed(1)} ms`,
          floor: `${f.median.toFixed(1)} ms, p95 ${f.p95.toFixed(1)} ms (bare express: INSERT one row + promote, to the parent job active)`,
          ratio: c.median / f.median,
          goal: '≤ 1.5× floor',
          met: c.median / f.median <= 1.5,
          notes:
            'cutter = POST of the EXEC grant that completes SG_1 + EXEC → the execute job active, through the real endpoint (validation, ' +
            'signature check, stored decision, audit, kill switch, promote) and the real gate processor (re-validates from Postgres, consumes, audits); ' +
            'lightweight flow execute ← approval-gate ← cutplan, no backup in between. ' +
            gap,
        },
        besideFloor(
          `approval path with only what DESIGN adds to the floor (median, p95 over ${runs} runs)`,
          b,
          'reported (bound under the row above)',
            'The floor\'s path plus the work DESIGN §3 puts between the POST and execute: the gate\'s job checks the stored row in ' +
            'PostgreSQL and writes its consumption (one INSERT … SELECT, one commit) before the next job may run. Nothing else: no signature, ' +
            'no audit row, no checks. ' +
            (b.median / f.median <= 1.5
              ? `At ${(b.median / f.median).toFixed(2)}× the floor in this run, the 1.5× goal is within reach of the path itself; `
              : `At ${(b.median / f.median).toFixed(2)}× the floor in this run, the path itself is over the 1.5× goal before any of cutter's own work: ` +
                `the gate's check and its committed write add ${(b.median - f.median).toFixed(1)} ms (the floor's one INSERT and its commit alone took ${insert.toFixed(2)} ms here), over half of a floor that short; `) +
            `what separates cutter from this row (${(c.median - b.median).toFixed(1)} ms) is its own work, listed in the row above.`,
        ),
        besideFloor(
          `approval path with all DESIGN requires, done minimally (median, p95 over ${runs} runs)`,
          design,
          'reported (how near the floor the contract can get here)',
            'Not cutter\'s code: the floor plus every step DESIGN §3 and issue 7 put between the completing POST and execute, each the ' +
            'cheapest way this bench knows (bench/figures/approval-design-bound.ts). POST: the signature verified, the document parsed ' +
            'strictly and bound to the run (run, target, plan hash, times, allowance, no self-approval) as read at the SG_1\'s arrival; ' +
            'one statement and one durable commit that, under the run\'s lock and inside its window, stores the decision (nonce unique), ' +
            'turns the kill switch on, appends its audit row to the hash chain and answers the run\'s unconsumed decisions, handed to the ' +
            'gate in Redis before the promote. Gate: both documents judged and their signatures verified again; one statement and one ' +
            'durable commit that consumes exactly those if PostgreSQL still holds them, sets the run running and records the gate\'s phase. ' +
            'What cutter does beyond it: its general parser and error codes, the reuse and switch rules that name what was refused, the ' +
            'gate\'s audit row, and a gate that can also decide on its own read of PostgreSQL. ' +
            `Cutter's median is ${(c.median / design.median).toFixed(2)}× this row's; ` +
            (design.median / f.median <= 1.5
              ? `at ${(design.median / f.median).toFixed(2)}× the floor, the contract itself leaves room for the 1.5× goal here.`
              : `at ${(design.median / f.median).toFixed(2)}× the floor, the contract itself, done minimally, is over the 1.5× goal on this machine.`),
        ),
        {
          name: 'invalid approvals refused (forged signature, 16 concurrent clients)',
          value: `${cutter.refusedPerS.toFixed(0)} req/s`,
          floor: `${floorRefusedPerS.toFixed(0)} req/s (bare express: parse JSON, answer 403)`,
          ratio: floorRefusedPerS / cutter.refusedPerS,
          goal: '≥ 1,000/s',
          met: cutter.refusedPerS >= 1000,
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
