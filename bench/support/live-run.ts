import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { loadTrustedKeys } from '../../shared/approval/keys.js';
import { generateSovereignKey, readPrivateKey, signApproval } from '../../shared/approval/sign.js';
import { submitApproval, type ApprovalDeps } from '../../shared/approval/submit.js';
import type { Config } from '../../shared/config.js';
import type { Pool } from '../../shared/db/pool.js';
import { planScope } from '../../shared/execute/authority.js';
import type { TransitionKind } from '../../shared/plan/transitions.js';

/**
 * A sovereign for bench runs: a fresh Ed25519 key whose public half is the
 * only trusted key (SOVEREIGN_KEYS = dir/public), and a function that signs
 * SG_1 + EXEC for a paused run and submits them through the real submit path
 * (validation, storage, tally, gate release), as the approval endpoint does.
 */
export interface BenchSovereign {
  keysDir: string;
  approve: (deps: { cfg: Config; pool: Pool; redis: Redis }, runId: string) => Promise<void>;
}

export function benchSovereign(dir: string): BenchSovereign {
  const key = generateSovereignKey();
  const keysDir = join(dir, 'sovereign-public');
  mkdirSync(keysDir, { recursive: true });
  writeFileSync(join(keysDir, 'bench-sovereign.pem'), key.publicPem);
  const privateKey = readPrivateKey(key.privatePem, 'bench sovereign key');
  return {
    keysDir,
    async approve({ cfg, pool, redis }, runId) {
      const { rows } = await pool.query<{ target: string; plan_sha256: string }>(
        `SELECT r.target, c.plan_sha256 FROM cutter_governance.run r
           JOIN cutter_governance.cut_change_set c ON c.run_id = r.run_id WHERE r.run_id = $1`,
        [runId],
      );
      const run = rows[0];
      if (!run) throw new Error(`run ${runId} has no plan to approve`);
      // The signer reads the allowance the plan needs and signs exactly that.
      const scope = await planScope(pool, runId);
      const gateQueue = new Queue('approval-gate', { connection: redis, prefix: cfg.CUTTER_QUEUE_PREFIX });
      const deps: ApprovalDeps = {
        pool,
        keys: await loadTrustedKeys(keysDir),
        quorum: cfg.SOVEREIGN_QUORUM,
        gateQueue,
        log: pino({ level: 'silent' }),
        releaseWaitMs: 30_000,
      };
      try {
        for (const gate of ['SG_1', 'EXEC'] as const) {
          const envelope = signApproval(
            { gate, runId, target: run.target, planSha256: run.plan_sha256, maxUnits: scope.unitCount, transitions: scope.transitions as TransitionKind[] },
            privateKey,
            { ttlS: 3600 },
          );
          const answer = await submitApproval(deps, runId, envelope);
          if (gate === 'EXEC' && !answer.released) throw new Error(`run ${runId}: approvals stored but the gate was not released (${answer.waiting_for.join(', ')})`);
        }
      } finally {
        await gateQueue.close();
      }
    },
  };
}

/** Polls (every 20 ms) until the run reaches one of the given statuses; returns it. */
export async function untilStatus(pool: Pool, runId: string, statuses: string[], deadlineMs = 600_000): Promise<string> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const { rows } = await pool.query<{ status: string }>('SELECT status FROM cutter_governance.run WHERE run_id = $1', [runId]);
    const status = rows[0]?.status ?? '';
    if (statuses.includes(status)) return status;
    if (Date.now() > deadline) throw new Error(`run ${runId} still ${status} after ${deadlineMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Seconds each phase of a run took, from run_phase (started_at → finished_at). */
export async function phaseSeconds(pool: Pool, runId: string): Promise<Record<string, number>> {
  const { rows } = await pool.query<{ phase: string; s: number | null }>(
    `SELECT phase, extract(epoch FROM finished_at - started_at)::float8 AS s
       FROM cutter_governance.run_phase WHERE run_id = $1`,
    [runId],
  );
  return Object.fromEntries(rows.map((r) => [r.phase, r.s ?? Number.NaN]));
}
