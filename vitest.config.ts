import { defineConfig } from 'vitest/config';

// Projects: unit tests need no services; the others get real PostgreSQL and
// Redis through test/support/global-setup.ts.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          sequence: { groupOrder: 0 },
          include: ['test/unit/**/*.test.ts'],
          environment: 'node',
        },
      },
      {
        test: {
          name: 'integration',
          sequence: { groupOrder: 1 },
          include: ['test/integration/**/*.test.ts'],
          environment: 'node',
          globalSetup: ['test/support/global-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          // Two cores: more forks than this only queue up on the database.
          maxWorkers: 2,
        },
      },
      {
        // Faults and hostile input (issue 10): its own Redis / Postgres
        // instances and worker processes. `npm test` runs the fast subset;
        // `npm run test:chaos` the whole suite (CHAOS_FULL=1). After the
        // integration forks, so kill timings do not compete with them.
        test: {
          name: 'chaos',
          sequence: { groupOrder: 2 },
          include: ['test/chaos/**/*.test.ts'],
          environment: 'node',
          globalSetup: ['test/support/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          maxWorkers: 2,
        },
      },
      {
        // Runs after the integration project (groupOrder), because `npm run
        // demo` rebuilds dist/ and must not rewrite it under running tests.
        test: {
          name: 'quickstart',
          sequence: { groupOrder: 3 },
          include: ['test/quickstart/**/*.test.ts'],
          environment: 'node',
          globalSetup: ['test/support/global-setup.ts'],
          testTimeout: 180_000,
          hookTimeout: 120_000,
        },
      },
      {
        // A real headless Chromium against the board; last, so it never
        // competes with the integration forks for the two cores.
        test: {
          name: 'e2e',
          sequence: { groupOrder: 4 },
          include: ['test/e2e/**/*.test.ts'],
          environment: 'node',
          globalSetup: ['test/support/global-setup.ts'],
          testTimeout: 90_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
