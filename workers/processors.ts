import { approvalGateWorker } from './approval-gate/process.js';
import { backupWorker } from './backup/process.js';
import type { PhaseWorkers } from './context.js';
import { cutplanWorker } from './cutplan/process.js';
import { discoverWorker } from './discover/process.js';
import { executeWorker } from './execute/process.js';
import { grantProbeWorker } from './grant-probe/process.js';
import { precheckWorker } from './precheck/process.js';
import { verifyWorker } from './verify/process.js';

/** Which worker serves which phase queue. */
export const PHASE_WORKERS: PhaseWorkers = {
  precheck: precheckWorker,
  'grant-probe': grantProbeWorker,
  discover: discoverWorker,
  cutplan: cutplanWorker,
  'approval-gate': approvalGateWorker,
  backup: backupWorker,
  execute: executeWorker,
  verify: verifyWorker,
};
