import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Integration tests share real servers and loop devices; files run in parallel
    // but each test owns uniquely named resources.
    pool: 'forks',
  },
});
