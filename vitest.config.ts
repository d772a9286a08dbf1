import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Separate processes: some suites force an instruction set, which is process-wide addon state.
    pool: 'forks',
    testTimeout: 60_000,
  },
});
