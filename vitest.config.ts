import { defineConfig } from 'vitest/config';

/** Tests that start many processes (Redis, coordinators, workers, shards): they run after the rest. */
const HEAVY = ['test/distributed.test.ts', 'test/chunk-queue.test.ts', 'test/shared-budget.test.ts'];

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 30_000,
    // Tests bind real sockets and spawn real processes; two forks keep a 2-core box responsive.
    pool: 'forks',
    maxWorkers: 2,
    // The distributed tests run a dozen processes at once; beside the demo's or the wedge test's
    // timing they made those fail on a loaded CI machine. A later group keeps them apart.
    projects: [
      {
        extends: true,
        test: { name: 'main', include: ['test/**/*.test.ts'], exclude: HEAVY, sequence: { groupOrder: 0 } },
      },
      { extends: true, test: { name: 'processes', include: HEAVY, sequence: { groupOrder: 1 } } },
    ],
  },
});
