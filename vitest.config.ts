import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Deadlines for a hang, not speed bounds: the suite must pass beside CPU burners on two
    // shared cores, where a child-process CLI test can take many times its quiet-machine time.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores on CI: keep file parallelism modest so socket tests are not starved.
    maxWorkers: 2,
  },
});
