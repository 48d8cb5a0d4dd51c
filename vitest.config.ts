import { defineConfig } from 'vitest/config';

// CI (CI=true) also writes vitest's JSON report; .ci/run turns it into "N passed, N failed".
const reporters: any[] = process.env.CI ? ['default', ['json', { outputFile: 'test-results/vitest.json' }]] : ['default'];

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: 2,
    reporters,
  },
});
