import type { Bench } from './harness.js';
import { approvalBench } from './figures/approval.js';
import { seedBench } from './figures/seed.js';
import { backupBench } from './figures/backup.js';
import { snapshotPlanBench } from './figures/snapshot-plan.js';
import { planReviewBench } from './figures/plan-review.js';
import { dryRunBench } from './figures/dry-run.js';
import { executeBench } from './figures/execute.js';
import { fleetBench } from './figures/fleet.js';
import { revertBench } from './figures/revert.js';
import { smallCutBench } from './figures/small-cut.js';

/** Every benchmark `npm run bench` runs, in order. Add a figure here. */
export const BENCHES: Bench[] = [seedBench, backupBench, snapshotPlanBench, planReviewBench, approvalBench, dryRunBench, smallCutBench, executeBench, revertBench, fleetBench];
