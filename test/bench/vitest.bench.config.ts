import { defineConfig } from 'vitest/config';

// Benchmarks that need vitest's harness (e.g. the S3 throughput run): run by a person,
// never by `npm test`:  LIFEBOAT_S3_BENCH=1 npx vitest run --config test/bench/vitest.bench.config.ts
export default defineConfig({
  test: { include: ['test/bench/**/*.bench-test.ts'], testTimeout: 1_800_000, hookTimeout: 300_000 },
});
