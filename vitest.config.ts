import { defineConfig } from 'vitest/config';

// Two projects: unit tests need no services; integration tests get real
// PostgreSQL and Redis through test/support/global-setup.ts.
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
        // Runs after the integration project (groupOrder), because `npm run
        // demo` rebuilds dist/ and must not rewrite it under running tests.
        test: {
          name: 'quickstart',
          sequence: { groupOrder: 2 },
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
          sequence: { groupOrder: 3 },
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
