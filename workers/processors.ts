import type { Phase } from '../shared/jobs/catalog.js';
import { processApprovalGate } from './approval-gate/process.js';
import { processBackup } from './backup/process.js';
import type { PhaseProcessor } from './context.js';
import { processCutplan } from './cutplan/process.js';
import { processDiscover } from './discover/process.js';
import { processExecute } from './execute/process.js';
import { processGrantProbe } from './grant-probe/process.js';
import { processPrecheck } from './precheck/process.js';
import { processVerify } from './verify/process.js';

/** Which processor serves which phase queue. */
export const PROCESSORS: Record<Phase, PhaseProcessor> = {
  precheck: processPrecheck,
  'grant-probe': processGrantProbe,
  discover: processDiscover,
  cutplan: processCutplan,
  'approval-gate': processApprovalGate,
  backup: processBackup,
  execute: processExecute,
  verify: processVerify,
};
