import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Tests share one slow resource (two cores); running files in parallel only makes each slower.
    fileParallelism: false,
    env: { CNNX_OFFLINE: '1' },
  },
});
