import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

// Tests run against the TypeScript sources (the `lockstep-source` export condition), so no build is
// needed first. Setting `conditions` replaces Vite's defaults, so they are repeated here.
const conditions = ['lockstep-source', 'module', 'node', 'development|production'];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ['lockstep-source'] } },
  test: {
    include: ['packages/*/src/**/*.test.{ts,tsx}', 'examples/*/src/**/*.test.{ts,tsx}'],
    reporters: ['default', './scripts/countReporter.ts'],
    // The chaos runs are CPU-bound: use every core (Vitest's default leaves one idle).
    maxWorkers: availableParallelism(),
    testTimeout: 120_000,
    hookTimeout: 60_000,
  },
});
