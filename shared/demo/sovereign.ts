import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { loadTrustedKeys } from '../approval/keys.js';
import { generateSovereignKey, readPrivateKey, signApproval } from '../approval/sign.js';
import { submitApproval, type ApprovalDeps } from '../approval/submit.js';
import type { Config } from '../config.js';
import type { Pool } from '../db/pool.js';
import { planScope } from '../plan/scope.js';
import type { AllowanceKind } from '../units/lifecycle.js';
import { openPhaseQueues } from '../jobs/queues.js';

/**
 * A local sovereign for the demo and the bench, never for production: an
 * Ed25519 key pair kept in `dir` (made once), whose public half is the only
 * trusted key (SOVEREIGN_KEYS = dir/public), and a function that signs SG_1 +
 * EXEC for a paused run and submits them through the real submit path
 * (validation, storage, tally, gate release), as the approval endpoint does.
 */
export interface LocalSovereign {
  keysDir: string;
  approve: (deps: { cfg: Config; pool: Pool; redis: Redis }, runId: string) => Promise<void>;
}

const KEY_NAME = 'demo-sovereign';

/** Loads (or makes) the key pair in dir and returns the signer. */
export function localSovereign(dir: string): LocalSovereign {
  const keysDir = join(dir, 'public');
  const privateFile = join(dir, 'private', `${KEY_NAME}.pem`);
  if (!existsSync(privateFile)) {
    const key = generateSovereignKey();
    mkdirSync(keysDir, { recursive: true });
    mkdirSync(join(dir, 'private'), { recursive: true, mode: 0o700 });
    writeFileSync(join(dir, 'README'), 'Demo-only sovereign key made by cutter; never trust it for a real corpus.\n');
    writeFileSync(join(keysDir, `${KEY_NAME}.pem`), key.publicPem);
    writeFileSync(privateFile, key.privatePem, { mode: 0o600 });
  }
  const privateKey = readPrivateKey(readFileSync(privateFile, 'utf8'), privateFile);
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
      const queues = openPhaseQueues(redis, cfg.CUTTER_QUEUE_PREFIX);
      const deps: ApprovalDeps = {
        pool,
        keys: await loadTrustedKeys(keysDir),
        quorum: cfg.SOVEREIGN_QUORUM,
        queues,
        log: pino({ level: 'silent' }),
        releaseWaitMs: 30_000,
      };
      try {
        for (const gate of ['SG_1', 'EXEC'] as const) {
          const envelope = signApproval(
            { gate, runId, target: run.target, planSha256: run.plan_sha256, maxUnits: scope.unitCount, transitions: scope.transitions as AllowanceKind[] },
            privateKey,
            { ttlS: 3600 },
          );
          const answer = await submitApproval(deps, runId, envelope);
          if (gate === 'EXEC' && !answer.released) throw new Error(`run ${runId}: approvals stored but the gate was not released (${answer.waiting_for.join(', ')})`);
        }
      } finally {
        await Promise.all(Object.values(queues).map((q) => q.close()));
      }
    },
  };
}
