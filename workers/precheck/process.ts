import { runSelftestAcrossRestart } from '../../shared/backup/selftest.js';
import { backupSpecFromConfig } from '../../shared/backup/spec.js';
import { CutterError } from '../../shared/errors.js';
import { phasesFor } from '../../shared/jobs/catalog.js';
import { describeDurability, redisDurability } from '../../shared/redis.js';
import { markBaseline } from '../../shared/runs/writes.js';
import { saveBaseline } from '../../shared/runs/store.js';
import { requireC3 } from '../../shared/targets/criteria.js';
import { requireTarget } from '../../shared/targets/registry.js';
import { reachMoment } from '../../shared/jobs/moments.js';
import type { PhaseResult } from '../../shared/jobs/results.js';
import type { PhaseCall, PhaseDeps, PhaseWorker } from '../context.js';
import { POSTGRES_OUTAGE_WAIT_MS } from '../phase-runner.js';

/**
 * G0: the baseline every later check compares with (the mark after which
 * every write to the run's corpus counts against it, docs/proof.md, and the
 * kill switch), plus the early refusals: protected target, volatile Redis
 * for a live run, a backup that could not be taken, a phase nobody serves.
 */
async function processPrecheck({ run }: PhaseCall, deps: PhaseDeps): Promise<PhaseResult<'precheck'>> {
  await requireC3(deps.pool, await requireTarget(deps.pool, run.target), run.mode);

  const durability = await redisDurability(deps.redis);
  if (run.mode === 'live' && !durability.durable && !deps.cfg.CUTTER_ALLOW_VOLATILE_REDIS) {
    throw new CutterError(
      'PRECHECK_REDIS_VOLATILE',
      `Redis is volatile (${describeDurability(durability)}): ` +
        'a crash could lose the run; enable appendonly + noeviction, or set CUTTER_ALLOW_VOLATILE_REDIS=true deliberately',
    );
  }

  // Asked of every queue at once: each answer is a CLIENT LIST of the whole Redis (of every node of a cluster).
  const phases = phasesFor(run.mode);
  const served = await Promise.all(phases.map(async (phase) => (await deps.queues[phase].getWorkers()).length > 0));
  const unserved = phases.filter((_, i) => !served[i]);
  if (unserved.length) {
    // Retried (PHASE_POLICY): workers reconnecting after a Redis restart register again within a second or two.
    throw new CutterError('PRECHECK_NO_WORKERS', `no worker serves the queue(s) ${unserved.join(', ')}: start cutter worker --phases ${unserved.join(',')}`, {
      unrecoverable: false,
    });
  }

  const selftest = await runSelftestAcrossRestart(backupSpecFromConfig(deps.cfg), deps.pool, POSTGRES_OUTAGE_WAIT_MS);
  if (!selftest.ok) {
    const failed = selftest.checks.filter((c) => !c.ok).map((c) => `${c.code ?? c.name}: ${c.message}`);
    throw new CutterError('PRECHECK_BACKUP_SELFTEST', `backup selftest failed (C7): ${failed.join('; ')}`);
  }

  const { rows } = await deps.pool.query<{ any: boolean; mine: boolean }>(
    'SELECT cutter_governance.execution_enabled() AS any, cutter_governance.execution_enabled($1) AS mine',
    [run.run_id],
  );
  await reachMoment('precheck.middle', run.run_id); // selftest done, no baseline yet
  const mark = await markBaseline(deps.pool, run.run_id);
  const baseline = {
    taken_utc: new Date().toISOString(),
    corpus: run.corpus,
    write_mark: mark,
    execution_enabled: rows[0]?.any ?? false,
    execution_enabled_for_run: rows[0]?.mine ?? false,
    redis: durability,
    volatile_redis_allowed: !durability.durable && deps.cfg.CUTTER_ALLOW_VOLATILE_REDIS,
    backup_selftest: selftest.checks.map((c) => ({ name: c.name, ok: c.ok })),
  };
  await saveBaseline(deps.pool, run.run_id, baseline);
  return {
    write_mark: mark,
    execution_enabled: baseline.execution_enabled,
    redis_durable: durability.durable,
  };
}

export const precheckWorker: PhaseWorker<'precheck'> = { process: processPrecheck };
