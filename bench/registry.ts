import type { Bench } from './harness.js';
import { seedBench } from './figures/seed.js';

/** Every benchmark `npm run bench` runs, in order. Add a figure here. */
export const BENCHES: Bench[] = [seedBench];
