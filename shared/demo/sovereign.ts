import { createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { existsSync, linkSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RedisClient } from '../redis.js';
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
 * A local sovereign for the demo and the bench, never for production: two
 * Ed25519 key pairs kept in `dir` (each made once), whose public halves are
 * the only trusted keys (SOVEREIGN_KEYS = dir/public), and a function that
 * signs SG_1 + EXEC for a paused run with the first and submits them through
 * the real submit path (validation, storage, tally, gate release), as the
 * approval endpoint does. The second key is the other signer of the demo
 * history's enactment, approved under a quorum of two.
 */
export interface LocalSovereign {
  keysDir: string;
  /** The signers, first the one `approve` signs with. */
  signers: { name: string; privateKey: KeyObject }[];
  approve: (deps: { cfg: Config; pool: Pool; redis: RedisClient }, runId: string) => Promise<void>;
}

const KEY_NAMES = ['demo-sovereign', 'demo-sovereign-2'] as const;

/** Loads (or makes) the key pairs in dir and returns the signer. */
export function localSovereign(dir: string): LocalSovereign {
  const keysDir = join(dir, 'public');
  mkdirSync(keysDir, { recursive: true });
  mkdirSync(join(dir, 'private'), { recursive: true, mode: 0o700 });
  if (!existsSync(join(dir, 'README'))) writeFileSync(join(dir, 'README'), 'Demo-only sovereign keys made by cutter; never trust them for a real corpus.\n');
  const signers = KEY_NAMES.map((name) => ({ name, privateKey: ensureKeyPair(dir, name) }));
  const first = signers[0];
  if (!first) throw new Error('the demo sovereign has no key');
  return {
    keysDir,
    signers,
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
            first.privateKey,
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

/**
 * The private key `name` of dir, made when missing. Several processes may
 * make it at once (test files seeding side by side): the private key is
 * linked into place, which only one of them wins, and the public half is
 * derived from the winner and renamed into place, so a reader never sees a
 * half-written file or a public key of another private key.
 */
function ensureKeyPair(dir: string, name: string): KeyObject {
  const privateFile = join(dir, 'private', `${name}.pem`);
  if (!existsSync(privateFile)) {
    const scratch = `${privateFile}.${process.pid}.${randomBytes(4).toString('hex')}`;
    writeFileSync(scratch, generateSovereignKey().privatePem, { mode: 0o600 });
    try {
      linkSync(scratch, privateFile);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    } finally {
      rmSync(scratch, { force: true });
    }
  }
  const privateKey = readPrivateKey(readFileSync(privateFile, 'utf8'), privateFile);
  const publicFile = join(dir, 'public', `${name}.pem`);
  const publicPem = createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString();
  if (!existsSync(publicFile) || readFileSync(publicFile, 'utf8') !== publicPem) {
    const scratch = `${publicFile}.${process.pid}.${randomBytes(4).toString('hex')}`;
    writeFileSync(scratch, publicPem);
    renameSync(scratch, publicFile);
  }
  return privateKey;
}
