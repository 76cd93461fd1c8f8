import { pino } from 'pino';
import { appendAudit } from '../audit/append.js';
import { loadTrustedKeys } from '../approval/keys.js';
import { signApproval } from '../approval/sign.js';
import { storeDecision } from '../approval/store.js';
import { checkSubmission } from '../approval/submit.js';
import { withTransaction, type Pool } from '../db/pool.js';
import { CutterError } from '../errors.js';
import { fileSha256 } from '../file-hash.js';
import { phasesFor, type Phase } from '../jobs/catalog.js';
import { planScope } from '../plan/scope.js';
import { getRun, insertRun } from '../runs/store.js';
import { hasEnded } from '../runs/status.js';
import { requireC3 } from '../targets/criteria.js';
import { registerTarget } from '../targets/intake.js';
import { acquireCorpusLock } from '../targets/lock.js';
import { getTarget, requireTarget } from '../targets/registry.js';
import type { TransitionKind } from '../units/lifecycle.js';
import { DEMO_HISTORY } from './corpus.js';
import { demoFile } from './files.js';
import { historyPhases, type HistoryContext } from './history-phases.js';
import { replayPhase, type ReplayedPhase } from './replay.js';
import type { LocalSovereign } from './sovereign.js';

/**
 * The demo history (DESIGN §2, the demo corpus): after the seed's import,
 * the targets and runs of DEMO_HISTORY, replayed through the code any run
 * goes through. Each step is skipped when it is already done, so a seed
 * interrupted half way finishes when it is run again, and a second seed
 * writes nothing.
 */

export interface HistoryDeps {
  pool: Pool;
  /** The operator of the history's runs and the registrant of its targets: who ran the seed. */
  actor: string;
  execRole: string;
  sovereign: LocalSovereign;
}

export interface HistoryRun {
  run_id: string;
  target: string;
  mode: 'dry' | 'live';
  status: string;
  verdict: 'PASS' | 'FAIL' | null;
}

export interface HistoryResult {
  /** The targets this call registered. */
  targetsRegistered: string[];
  /** The runs this call replayed (or finished replaying). */
  runsReplayed: string[];
  /** Every history run as it stands now. */
  runs: HistoryRun[];
}

type RunSpec = (typeof DEMO_HISTORY)['enactment'] | (typeof DEMO_HISTORY)['amendment'];

/** Registers the history's targets and replays its runs, in DEMO_HISTORY's order. */
export async function replayHistory(deps: HistoryDeps): Promise<HistoryResult> {
  const result: HistoryResult = { targetsRegistered: [], runsReplayed: [], runs: [] };
  if (await registerIfMissing(deps, DEMO_HISTORY.enactmentTarget)) result.targetsRegistered.push(DEMO_HISTORY.enactmentTarget.name);
  if (await replayRun(deps, DEMO_HISTORY.enactment)) result.runsReplayed.push(DEMO_HISTORY.enactment.runId);
  if (await registerIfMissing(deps, DEMO_HISTORY.protectedTarget)) result.targetsRegistered.push(DEMO_HISTORY.protectedTarget.name);
  if (await replayRun(deps, DEMO_HISTORY.amendment)) result.runsReplayed.push(DEMO_HISTORY.amendment.runId);
  for (const spec of [DEMO_HISTORY.enactment, DEMO_HISTORY.amendment]) {
    const run = await getRun(deps.pool, spec.runId);
    if (run) result.runs.push({ run_id: run.run_id, target: run.target, mode: run.mode, status: run.status, verdict: run.verdict });
  }
  return result;
}

/** `cutter target register` of a history target (intake C1–C4, audited), unless it is registered; true when this registered it. */
async function registerIfMissing(deps: HistoryDeps, registration: object & { name: string }): Promise<boolean> {
  if (await getTarget(deps.pool, registration.name)) return false;
  const intake = await registerTarget(deps.pool, JSON.stringify(registration), deps.actor);
  if (!intake.target) {
    const failed = intake.criteria.filter((c) => !c.pass).map((c) => `${c.id} ${c.reason}`);
    throw new CutterError('DEMO_HISTORY_BROKEN', `the demo history's target ${registration.name} was refused: ${failed.join('; ')}`);
  }
  return true;
}

/** Enqueues (unless it exists) and replays one history run to its end; true when this call did any of it. */
async function replayRun(deps: HistoryDeps, spec: RunSpec): Promise<boolean> {
  const existing = await getRun(deps.pool, spec.runId);
  if (existing && hasEnded(existing.status)) {
    if (existing.status !== 'succeeded') {
      throw new CutterError('DEMO_HISTORY_BROKEN', `demo history run ${spec.runId} ended ${existing.status}: seed a fresh database`);
    }
    return false;
  }
  if (!existing) await enqueue(deps, spec);
  const ctx: HistoryContext = {
    pool: deps.pool,
    execRole: deps.execRole,
    keysDir: deps.sovereign.keysDir,
    quorum: spec.quorum,
    log: pino({ level: 'silent' }),
  };
  const phases = historyPhases(ctx);
  for (const phase of phasesFor(spec.mode)) {
    if (phase === 'approval-gate') await approve(deps, spec);
    await replayPhase(deps.pool, spec.runId, phase, phases[phase] as ReplayedPhase<Phase>);
  }
  const run = await getRun(deps.pool, spec.runId);
  if (run?.status !== 'succeeded' || run.verdict !== 'PASS') {
    throw new CutterError('DEMO_HISTORY_BROKEN', `demo history run ${spec.runId} ended ${run?.status ?? 'gone'} (verdict ${run?.verdict ?? 'none'}): see cutter status ${spec.runId}`);
  }
  return true;
}

/**
 * What `cutter run` records before the flow exists (producers/flow/enqueue.ts):
 * the target's checks, the run row, its corpus lock and run.enqueued, in one
 * transaction. Its snapshot is the demo file it names, hashed as it is.
 */
async function enqueue(deps: HistoryDeps, spec: RunSpec): Promise<void> {
  const target = await requireTarget(deps.pool, spec.target);
  await requireC3(deps.pool, target, spec.mode);
  const snapshotPath = demoFile('history', spec.snapshot);
  const snapshotSha256 = await fileSha256(snapshotPath);
  await withTransaction(deps.pool, async (client) => {
    await insertRun(client, {
      runId: spec.runId,
      target: target.name,
      corpus: target.corpus,
      mode: spec.mode,
      operator: deps.actor,
      snapshotPath,
      snapshotSha256,
      idempotencyKey: null,
      approvalWindowS: 3600,
    });
    await acquireCorpusLock(client, { corpus: target.corpus, runId: spec.runId });
    await appendAudit(client, { actor: deps.actor, kind: 'run.enqueued', runId: spec.runId, detail: { target: target.name, mode: spec.mode, snapshot_sha256: snapshotSha256 } });
  });
}

/**
 * The sovereigns' part of a live history run, paused at SG_1: as many
 * SG_1 approvals as its quorum asks, by distinct demo keys, and one EXEC
 * grant, each signed over the plan's real hash for exactly the allowance the
 * plan needs (as `cutter approval sign` does) and stored through the
 * endpoint's own checks. A decision already stored is not signed again.
 */
async function approve(deps: HistoryDeps, spec: RunSpec): Promise<void> {
  const { pool } = deps;
  const { rows } = await pool.query<{ target: string; plan_sha256: string; gate: string | null; key_id: string | null }>(
    `SELECT r.target, c.plan_sha256, d.gate, d.key_id
       FROM cutter_governance.run r
       JOIN cutter_governance.cut_change_set c ON c.run_id = r.run_id
       LEFT JOIN cutter_governance.review_decision d ON d.run_id = r.run_id
      WHERE r.run_id = $1`,
    [spec.runId],
  );
  const plan = rows[0];
  if (!plan) throw new CutterError('DEMO_HISTORY_BROKEN', `demo history run ${spec.runId} has no plan to approve`);
  const stored = new Set(rows.map((r) => `${r.gate ?? ''}:${r.key_id ?? ''}`));
  const scope = await planScope(pool, spec.runId);
  const keys = await loadTrustedKeys(deps.sovereign.keysDir);
  const signers = deps.sovereign.signers;
  const wanted = [...signers.slice(0, spec.quorum).map((s) => ({ gate: 'SG_1' as const, signer: s })), { gate: 'EXEC' as const, signer: signers[0] }];
  for (const { gate, signer } of wanted) {
    if (!signer) throw new CutterError('DEMO_HISTORY_BROKEN', `the demo sovereign has fewer than ${spec.quorum} keys`);
    const envelope = signApproval(
      { gate, runId: spec.runId, target: plan.target, planSha256: plan.plan_sha256, maxUnits: scope.unitCount, transitions: scope.transitions as TransitionKind[] },
      signer.privateKey,
      { ttlS: 3600 },
    );
    if (stored.has(`${gate}:${envelope.key_id}`)) continue;
    const checked = await checkSubmission({ pool, keys }, spec.runId, envelope);
    await storeDecision(pool, checked.valid);
  }
}
