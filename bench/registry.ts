import type { Bench } from './harness.js';
import { seedBench } from './figures/seed.js';
import { backupBench } from './figures/backup.js';
import { snapshotPlanBench } from './figures/snapshot-plan.js';

/** Every benchmark `npm run bench` runs, in order. Add a figure here. */
export const BENCHES: Bench[] = [seedBench, snapshotPlanBench, backupBench];
