import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { loadGateRun } from '../../shared/approval/binding.js';
import { loadTrustedKeys, type TrustedKeys } from '../../shared/approval/keys.js';
import { validateSovereignApproval, type ValidApproval } from '../../shared/approval/validate.js';
import { createDemoDatabase, type TestDatabase } from './db.js';
import type { PausedRun } from './paused-run.js';
import { approvalFor, writeTrustedKeys, type TestKey } from './sovereign.js';

/** A test file's demo database and the sovereign keys it trusts; filled in before its first test. */
export interface ApprovalDb {
  db: TestDatabase;
  keys: TrustedKeys;
}

/**
 * Opens a demo database (seeded by "test") and a SOVEREIGN_KEYS folder
 * trusting `trusted` before the file's tests, and removes both after them.
 * Use the fields inside tests, not at the file's top level.
 */
export function approvalDatabase(label: string, trusted: TestKey[]): ApprovalDb {
  const env = {} as ApprovalDb;
  const dir = mkdtempSync(join(tmpdir(), `cutter-${label}-`));
  beforeAll(async () => {
    env.db = await createDemoDatabase(label, 'test');
    env.keys = await loadTrustedKeys(writeTrustedKeys(dir, trusted));
  }, 60_000);
  afterAll(async () => {
    await env.db.drop();
    rmSync(dir, { recursive: true, force: true });
  });
  return env;
}

/** A fresh approval by key for run, validated as the endpoint validates it on arrival (against the run as Postgres has it now). */
export async function arrivedApproval(env: ApprovalDb, run: PausedRun, gate: 'SG_1' | 'EXEC', key: TestKey): Promise<ValidApproval> {
  const binding = await loadGateRun(env.db.pool, run.runId);
  if (!binding) throw new Error(`no run ${run.runId}`);
  return validateSovereignApproval(approvalFor(run, gate, key), { keys: env.keys, run: binding, now: new Date(), stage: 'submit' });
}
