import { appendAudit } from '../audit/append.js';
import { GATE_READS, gateReadsFromClaim } from '../approval/binding.js';
import { decideGate, openGate } from '../approval/gate.js';
import { loadTrustedKeys } from '../approval/keys.js';
import { withTransaction, type Pool } from '../db/pool.js';
import { CutterError } from '../errors.js';
import { executeRun } from '../execute/execution.js';
import { grantProbeError, probeGrants } from '../grants/probe.js';
import type { Phase } from '../jobs/catalog.js';
import type { PhaseResult } from '../jobs/results.js';
import type { Logger } from '../logger.js';
import { buildPlan } from '../plan/build.js';
import { buildReport } from '../runs/report.js';
import { runChecks, saveVerifyResult } from '../runs/checks.js';
import { markBaseline } from '../runs/writes.js';
import { finishRun, saveBaseline, saveReport, setRunStatus } from '../runs/store.js';
import { discardStagedSnapshot, stageSnapshot } from '../snapshot/stage.js';
import { requireC3 } from '../targets/criteria.js';
import { releaseCorpusLock, acquireCorpusLock } from '../targets/lock.js';
import { requireTarget } from '../targets/registry.js';
import { demoUnits, sha256Hex } from './corpus.js';
import type { ReplayedPhase } from './replay.js';

/**
 * Each phase of a demo history run, doing what its worker does
 * (workers/<phase>/process.ts) through the same shared functions, except
 * where the seed has no way to: it uses no Redis and no gpg, so precheck
 * records no Redis durability or backup selftest, and the backup phase
 * records that no backup was taken (historyBackup). The events the seed
 * audits in a worker's place are audited by SEED_ACTOR, so the chain says
 * who wrote them.
 */

/** Who wrote what a worker writes in a live system. */
export const SEED_ACTOR = 'demo-seed';

export interface HistoryContext {
  pool: Pool;
  execRole: string;
  /** The trusted keys' folder (the demo sovereign's) and the SG_1 quorum in force for this run. */
  keysDir: string;
  quorum: number;
  log: Logger;
}

/**
 * The backup phase's record: the seed takes no backup. What a restore
 * would bring back is the state any `cutter demo seed` of an empty database
 * rebuilds; sha256 is that of the seed's import (its units as NDJSON, one a
 * line). apply_plan requires a completed backup record of the run (CX007):
 * this is it, and it says what it is.
 */
export function historyBackup(): PhaseResult<'backup'> {
  return {
    file: 'none: demo seed history, no backup taken (cutter demo seed on an empty database rebuilds the state before this run)',
    manifest_file: 'none',
    bytes: 0,
    sha256: sha256Hex(demoUnits().map((u) => `${JSON.stringify(u)}\n`).join('')),
    recipient_fpr: 'none',
    verified: true,
  };
}

/** What every history run's report ends with. */
export const HISTORY_NOTE = [
  '## Demo seed history',
  '',
  'This run is part of the history `cutter demo seed` replays on an empty database (docs/design.md §2, the demo corpus): its plan, approvals, gate, apply and verification went through the same code as any run, with no workers, no Redis and no backup (see Backup).',
  '',
].join('\n');

const NO_REDIS = { appendonly: false, maxmemoryPolicy: 'none: the demo seed uses no Redis', durable: false };

/** The replayed phases of a run of this mode, in order. */
export function historyPhases(ctx: HistoryContext): { [P in Phase]: ReplayedPhase<P> } {
  const { pool } = ctx;
  return {
    precheck: {
      process: async (run) => {
        await requireC3(pool, await requireTarget(pool, run.target), run.mode);
        const { rows } = await pool.query<{ any: boolean; mine: boolean }>(
          'SELECT cutter_governance.execution_enabled() AS any, cutter_governance.execution_enabled($1) AS mine',
          [run.run_id],
        );
        const mark = await markBaseline(pool, run.run_id);
        const on = rows[0] ?? { any: false, mine: false };
        await saveBaseline(pool, run.run_id, {
          taken_utc: new Date().toISOString(),
          corpus: run.corpus,
          write_mark: mark,
          execution_enabled: on.any,
          execution_enabled_for_run: on.mine,
          redis: NO_REDIS,
          volatile_redis_allowed: false,
          backup_selftest: [],
        });
        return { write_mark: mark, execution_enabled: on.any, redis_durable: false };
      },
    },
    'grant-probe': {
      process: async () => {
        const result = await probeGrants(pool, ctx.execRole);
        if (!result.ok) throw grantProbeError(result) ?? new CutterError('GRANTS_MISSING', 'the grant probe failed');
        return { role: result.role, rows: result.rows.length, all_hold: true };
      },
    },
    discover: {
      process: async (run) => {
        if (!run.snapshot_path || !run.snapshot_sha256) throw new CutterError('SNAPSHOT_NOT_RECORDED', `run ${run.run_id} has no snapshot recorded`);
        await acquireCorpusLock(pool, { corpus: run.corpus, runId: run.run_id });
        const staged = await stageSnapshot(pool, { runId: run.run_id, corpus: run.corpus, path: run.snapshot_path });
        if (staged.sha256 !== run.snapshot_sha256) {
          throw new CutterError('SNAPSHOT_CHANGED', `snapshot ${run.snapshot_path} is not the one recorded (sha256 ${staged.sha256} ≠ ${run.snapshot_sha256})`);
        }
        return { records: staged.records, bytes: staged.bytes, sha256: staged.sha256 };
      },
    },
    cutplan: {
      process: async (run) => {
        const target = await requireTarget(pool, run.target);
        const plan = await withTransaction(pool, (client) => buildPlan(client, { runId: run.run_id, target }));
        if (run.mode === 'live') {
          await withTransaction(pool, async (tx) => {
            if (await setRunStatus(tx, run.run_id, 'awaiting_approval')) {
              await appendAudit(tx, { actor: SEED_ACTOR, kind: 'run.awaiting_approval', runId: run.run_id, detail: { plan_sha256: plan.plan_sha256, unit_count: plan.unit_count } });
            }
          });
        }
        return plan;
      },
    },
    'approval-gate': {
      claimReads: GATE_READS,
      process: async (run, reads) =>
        decideGate(pool, gateReadsFromClaim(run, reads), { keys: await loadTrustedKeys(ctx.keysDir), quorum: ctx.quorum, now: new Date() }),
      complete: (tx, run, result) => openGate(tx, run.run_id, result),
    },
    backup: {
      process: () => Promise.resolve(historyBackup()),
    },
    execute: {
      process: (run) =>
        executeRun(pool, run, { execRole: ctx.execRole, sovereign: { keysSource: ctx.keysDir, quorum: ctx.quorum }, log: ctx.log }),
    },
    verify: {
      process: async (run) => {
        const checks = await runChecks(pool, run);
        await saveVerifyResult(pool, run.run_id, checks);
        await releaseCorpusLock(pool, run.run_id);
        await discardStagedSnapshot(pool, run.run_id);
        const failed = checks.filter((c) => !c.passed).map((c) => c.name);
        return { verdict: failed.length ? 'FAIL' : 'PASS', checks: checks.length, failed };
      },
      complete: async (tx, run, result) => {
        const ended = await finishRun(tx, { runId: run.run_id, verdict: result.verdict });
        await saveReport(tx, run.run_id, `${await buildReport(tx, run.run_id)}\n${HISTORY_NOTE}`);
        if (ended) await appendAudit(tx, { actor: SEED_ACTOR, kind: 'run.verified', runId: run.run_id, detail: { verdict: result.verdict, checks: result.checks } });
      },
    },
  };
}
