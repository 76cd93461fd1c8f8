import type { Command } from 'commander';
import { CutterError } from '../../../shared/errors.js';
import { phaseJobData } from '../../../shared/jobs/catalog.js';
import { openPhaseQueues } from '../../../shared/jobs/queues.js';
import { createRedis } from '../../../shared/redis.js';
import { cancelRun, STOP_REASON } from '../../../shared/stop/cancel.js';
import { type CliContext, out, outJson } from '../context.js';

/**
 * `cutter cancel RUN_ID --reason TEXT [--json]` (DESIGN §4, docs/stopping-runs.md):
 * exit 0 cancelled (or already cancelled), 1 refused (execute has begun, or
 * the run ended otherwise), 2 unknown run or bad input.
 */
export function registerCancelCommand(program: Command, ctx: () => CliContext): void {
  program
    .command('cancel')
    .description('end a run before its execute phase: status cancelled, its jobs removed, its corpus released')
    .argument('<run_id>', 'the run to cancel')
    .requiredOption('--reason <text>', 'why (1-200 printable ASCII characters); audited')
    .option('--json', 'print one JSON object on stdout')
    .action(async (runId: string, opts: { reason: string; json?: boolean }) => {
      if (!STOP_REASON.test(opts.reason)) {
        throw new CutterError('REASON_INVALID', '--reason must be 1-200 printable ASCII characters', { kind: 'bad_input' });
      }
      if (!phaseJobData.safeParse({ runId }).success) throw unknownRun(runId);
      const c = ctx();
      const redis = createRedis(c.cfg.REDIS_URL);
      const queues = openPhaseQueues(redis, c.cfg.CUTTER_QUEUE_PREFIX);
      let result: Awaited<ReturnType<typeof cancelRun>>;
      try {
        result = await cancelRun({ pool: c.db(), queues }, { runId, actor: c.cfg.CUTTER_OPERATOR, reason: opts.reason });
      } finally {
        await Promise.all(Object.values(queues).map((q) => q.close()));
        redis.disconnect();
      }
      const answer = {
        run_id: runId,
        cancelled: result.outcome === 'stopped' || result.outcome === 'already',
        already: result.outcome === 'already',
        status: result.status,
        phase: result.phase,
        active_jobs: result.activeJobs,
      };
      const refusal = refusalFor(runId, result);
      if (opts.json) outJson(refusal ? { ...answer, error: { code: refusal.code, message: refusal.message } } : answer);
      if (refusal) throw refusal;
      if (opts.json) return;
      out(result.outcome === 'already' ? `run ${runId} was already cancelled` : `cancelled run ${runId} (it was at ${result.phase ?? 'no phase yet'})`);
      out('its jobs are removed, its corpus lock is released, its staged snapshot dropped');
      if (result.activeJobs.length) out(`still active: ${result.activeJobs.join(', ')} (its worker stops it at the end of the phase and removes the job)`);
    });
}

function unknownRun(runId: string): CutterError {
  return new CutterError('RUN_UNKNOWN', `no run ${runId}`, { kind: 'bad_input' });
}

/** The error for an outcome that did not cancel; null when it did. */
function refusalFor(runId: string, r: Awaited<ReturnType<typeof cancelRun>>): CutterError | null {
  switch (r.outcome) {
    case 'stopped':
    case 'already':
      return null;
    case 'unknown':
      return unknownRun(runId);
    case 'execute_begun':
      return new CutterError('CANCEL_TOO_LATE', `run ${runId} is past cancelling: its ${r.phase ?? 'execute'} phase has begun`, { kind: 'refused' });
    case 'ended':
      return new CutterError('RUN_ENDED', `run ${runId} already ended ${r.status ?? '?'}${r.phase ? ` (at ${r.phase})` : ''}: there is nothing to cancel`, { kind: 'refused' });
  }
}
