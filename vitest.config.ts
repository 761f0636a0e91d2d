import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 30_000,
    // Tests bind real sockets and spawn real processes; two forks keep a 2-core box responsive.
    pool: 'forks',
    maxWorkers: 2,
  },
});
