import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadGateRun } from '../../shared/approval/binding.js';
import { loadTrustedKeys } from '../../shared/approval/keys.js';
import { submitApproval, type ApprovalDeps, type SubmitAnswer } from '../../shared/approval/submit.js';
import { errorCode } from '../../shared/errors.js';
import { untilClock, waitFor } from '../support/poll.js';
import { createRunEnv, type RunEnv } from '../support/run-env.js';
import { approvalFor, enactingSnapshot, waitForGate } from '../support/sovereign.js';
import { CHAOS_FULL, recordOutcome, runEffect, violation, type RunEffect } from './support/outcomes.js';
import { openPhaseQueues } from '../../shared/jobs/queues.js';

/**
 * Issue 10, race 2: an approval and the approval window's end racing each
 * other. A live run waits at SG_1 with a short window; valid SG_1 + EXEC
 * approvals go in through the real submit path (what POST
 * /runs/:id/approvals runs) at a moment swept across the window's end.
 * Every trial must end exactly one way:
 *  - opened: both approvals accepted and consumed, the run succeeded with
 *    the plan applied once;
 *  - expired: status expired (APPROVAL_EXPIRED), no approval consumed, the
 *    kill switch off for the run, nothing applied, and an approval that the
 *    expiry beat refused with APPROVAL_RUN_NOT_AWAITING (never accepted and
 *    then dropped).
 * Anything else (expired with the switch on or approvals consumed, succeeded
 * after the expiry, an accepted pair that did not open the gate) is a "both".
 */

const WINDOW_S = 4;

// Offsets (ms) from the window's end. The gate job wakes a few ms after it
// (BullMQ starts the delay when cutplan's job completes), so the fine steps
// near zero are where submit and gate really meet; ±1.5 s are the clear cases.
const FAST_OFFSETS = [-1500, -3, 0, 8, 1500];
const FULL_OFFSETS = [-1500, -800, -300, -100, -40, -20, -10, -5, -3, -2, -1, 0, 1, 2, 4, 6, 8, 12, 16, 25, 40, 80, 300, 1500];
const OFFSETS = CHAOS_FULL ? FULL_OFFSETS : FAST_OFFSETS;

/** both: SG_1 and EXEC sent together at the offset; exec-last: SG_1 sent as soon as the run paused, EXEC at the offset. */
type Timing = 'both' | 'exec-last';

interface TrialPlan {
  offsetMs: number;
  timing: Timing;
}

// Each offset tried with both timings, over two lanes (a database each, since
// the kill switch is one row per database) that run side by side.
const PLANS: TrialPlan[] = OFFSETS.flatMap((offsetMs) => (['both', 'exec-last'] as const).map((timing) => ({ offsetMs, timing })));
const LANES = 2;

interface Trial {
  plan: TrialPlan;
  runId: string;
  /** When the decisive submit actually started, relative to the window's end (ms). */
  actualOffsetMs: number;
  outcome: 'opened' | 'expired' | 'both';
  problems: string[];
  effect: RunEffect;
}

const silent = pino({ level: 'silent' });
let lanes: { env: RunEnv; deps: ApprovalDeps }[] = [];

beforeAll(async () => {
  lanes = await Promise.all(
    Array.from({ length: LANES }, async (_, i) => {
      const env = await createRunEnv(`races-gate${i}`);
      await env.startFleet();
      // The endpoint's own wiring (board/deps.ts), minus HTTP: the same validation, storage, tally and release.
      const deps: ApprovalDeps = {
        pool: env.db.pool,
        keys: await loadTrustedKeys(env.sovereign.dir),
        quorum: env.cfg.SOVEREIGN_QUORUM,
        queues: openPhaseQueues(env.redis, env.cfg.CUTTER_QUEUE_PREFIX),
        log: silent,
        releaseWaitMs: 10_000,
      };
      return { env, deps };
    }),
  );
});
afterAll(async () => {
  await Promise.all(
    lanes.map(async ({ env, deps }) => {
      await Promise.all(Object.values(deps.queues).map((q) => q.close()));
      await env.close();
    }),
  );
});

type Answer = { gate: 'SG_1' | 'EXEC'; accepted: true; answer: SubmitAnswer } | { gate: 'SG_1' | 'EXEC'; accepted: false; code: string };

async function submit(deps: ApprovalDeps, run: Awaited<ReturnType<typeof waitForGate>>, env: RunEnv, gate: 'SG_1' | 'EXEC'): Promise<Answer> {
  try {
    return { gate, accepted: true, answer: await submitApproval(deps, run.runId, approvalFor(run, gate, env.sovereign.key)) };
  } catch (err) {
    return { gate, accepted: false, code: errorCode(err) };
  }
}

/** One live run, approved at `plan.offsetMs` from its window's end; judged from Postgres alone. */
async function trial(lane: (typeof lanes)[number], plan: TrialPlan, index: number): Promise<Trial> {
  const { env, deps } = lane;
  const pool = env.db.pool;
  // Two drafts of its own per trial, so an opened run never changes what a later trial plans.
  const first = 1 + 2 * index;
  const before = await env.corpus();
  const runId = await env.enqueue('live', { snapshot: enactingSnapshot(env.dir, first, first + 1), approvalWindowS: WINDOW_S });
  const run = await waitForGate(env, runId);
  const windowEndsAt = (await loadGateRun(pool, runId))?.windowEndsAt;
  if (!windowEndsAt) throw new Error(`run ${runId} paused without a window`);

  const answers: Answer[] = [];
  if (plan.timing === 'exec-last') answers.push(await submit(deps, run, env, 'SG_1'));
  // Aiming, not waiting for a state: the moment to hit is a known timestamp
  // (the window's end, from cutplan's finish in Postgres), so the delay is
  // computed from it. A negative delay (a slow machine) submits at once and
  // the actual offset is what is recorded.
  await untilClock(windowEndsAt.getTime() + plan.offsetMs);
  const actualOffsetMs = Date.now() - windowEndsAt.getTime();
  const gates = plan.timing === 'both' ? (['SG_1', 'EXEC'] as const) : (['EXEC'] as const);
  answers.push(...(await Promise.all(gates.map((g) => submit(deps, run, env, g)))));

  const view = await env.waitForEnd(runId, 90_000);
  // Read at once: the switch must already be off when the run is seen ended.
  const switchOn = (await pool.query<{ on: boolean }>('SELECT cutter_governance.execution_enabled($1) AS on', [runId])).rows[0]?.on;
  // "Late" against the window's end at the database's full precision (a JS Date keeps only ms), spelled out here from DESIGN §3.
  const decisions = await pool.query<{ gate: string; consumed: boolean; late: boolean }>(
    `SELECT d.gate, d.consumed_utc IS NOT NULL AS consumed,
            d.received_utc >= p.finished_at + r.approval_window_s * interval '1 second' AS late
       FROM cutter_governance.review_decision d
       JOIN cutter_governance.run r ON r.run_id = d.run_id
       JOIN cutter_governance.run_phase p ON p.run_id = d.run_id AND p.phase = 'cutplan'
      WHERE d.run_id = $1 ORDER BY d.id`,
    [runId],
  );
  // The run's last audit event and the lock release follow its status by a
  // statement or two (workers/phase-runner.ts), so they are awaited, not raced.
  const kinds = await waitFor(`run ${runId}'s closing audit event`, async () => {
    const { rows } = await pool.query<{ kind: string }>(
      `SELECT kind FROM cutter_governance.audit_event
        WHERE run_id = $1 AND kind IN ('gate.released', 'run.expired', 'run.verified') ORDER BY seq`,
      [runId],
    );
    return rows.some((r) => r.kind !== 'gate.released') ? rows.map((r) => r.kind) : undefined;
  });
  const locks = await pool.query('SELECT 1 FROM cutter_governance.corpus_lock WHERE run_id = $1', [runId]);
  const effect = await runEffect(pool, runId, before);
  const late = await submit(deps, run, env, 'EXEC');

  const problems: string[] = [];
  const accepted = answers.filter((a) => a.accepted).length;
  const refusedCodes = answers.flatMap((a) => (a.accepted ? [] : [a.code]));
  const consumed = decisions.rows.filter((d) => d.consumed).length;
  const released = answers.some((a) => a.accepted && a.answer.released);
  const broken = violation(effect, 'live');
  if (broken) problems.push(broken);
  if (switchOn) problems.push('kill switch still on for the ended run');
  if (locks.rowCount) problems.push('corpus lock still held');
  if (late.accepted || late.code !== 'APPROVAL_RUN_NOT_AWAITING') problems.push(`an approval after the end got ${late.accepted ? 'accepted' : late.code}`);
  if (refusedCodes.some((c) => c !== 'APPROVAL_RUN_NOT_AWAITING')) problems.push(`refused with ${refusedCodes.join(', ')}`);
  if (decisions.rows.some((d) => d.late)) problems.push('an approval received after the window end was stored');

  let outcome: Trial['outcome'];
  if (view.status === 'succeeded') {
    outcome = 'opened';
    if (accepted !== 2 || consumed !== 2) problems.push(`opened with ${accepted} accepted, ${consumed} consumed`);
    if (effect.applied !== 'once') problems.push(`opened but applied ${effect.applied}`);
    if (kinds.join() !== 'gate.released,run.verified') problems.push(`audit says ${kinds.join(', ')}`);
    if (!released) problems.push('opened, yet no answer said released');
  } else if (view.status === 'expired') {
    outcome = 'expired';
    if (view.error?.code !== 'APPROVAL_EXPIRED') problems.push(`expired with ${view.error?.code ?? 'no code'}`);
    if (consumed !== 0) problems.push(`expired with ${consumed} approvals consumed`);
    if (effect.applied !== 'none') problems.push(`expired but applied ${effect.applied}`);
    if (kinds.join() !== 'run.expired') problems.push(`audit says ${kinds.join(', ')}`);
    // An approval the endpoint accepted must count: if both were accepted, the gate had to open.
    if (accepted === 2) problems.push('both approvals were accepted, yet the run expired');
    if (released) problems.push('an answer said released, yet the run expired');
  } else {
    outcome = 'both';
    problems.push(`ended ${view.status} (${view.error?.code ?? '-'})`);
  }
  if (problems.length) outcome = 'both';
  return { plan, runId, actualOffsetMs, outcome, problems, effect };
}

describe('races: an approval against the approval window running out', () => {
  it(`never both opened and expired (${PLANS.length} trials, offsets ${OFFSETS[0] ?? 0}…${OFFSETS.at(-1) ?? 0} ms)`, async () => {
    // Dealt so that every lane gets every offset, with the two timings alternating between lanes.
    const perLane = await Promise.all(
      lanes.map(async (lane, l) => {
        const done: Trial[] = [];
        const mine = PLANS.filter((_, i) => (i + Math.floor(i / LANES)) % LANES === l);
        for (const [index, plan] of mine.entries()) done.push(await trial(lane, plan, index));
        return done;
      }),
    );
    const all = perLane.flat().sort((a, b) => a.actualOffsetMs - b.actualOffsetMs);
    const line = (t: Trial) =>
      `${t.plan.timing}@${t.plan.offsetMs}ms (actual ${t.actualOffsetMs}) ${t.runId}: ${t.outcome} (${t.effect.status})${t.problems.length ? ` — ${t.problems.join('; ')}` : ''}`;
    const opened = all.filter((t) => t.outcome === 'opened').length;
    const expired = all.filter((t) => t.outcome === 'expired').length;
    const both = all.filter((t) => t.outcome === 'both');
    const ended = all.filter((t) => ['succeeded', 'failed', 'expired'].includes(t.effect.status)).length;
    recordOutcome({
      group: 'races',
      fault: 'approval vs approval-window expiry',
      tries: all.length,
      runsEnded: ended,
      doubleApplications: all.filter((t) => t.effect.applied === 'double').length,
      partialApplications: all.filter((t) => t.effect.applied === 'partial').length,
      lostRuns: all.length - ended,
      forgeriesAccepted: 0,
      notes: `opened ${opened}, expired ${expired}, both ${both.length}; submits from ${all[0]?.actualOffsetMs ?? 0} to ${all.at(-1)?.actualOffsetMs ?? 0} ms around the window end`,
    });
    expect(both.map(line), all.map(line).join('\n')).toEqual([]);
    // The sweep has to reach both sides of the boundary, or it proved nothing.
    expect(opened, all.map(line).join('\n')).toBeGreaterThan(0);
    expect(expired, all.map(line).join('\n')).toBeGreaterThan(0);
  }, 600_000);
});
