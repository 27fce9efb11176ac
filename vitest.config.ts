import { defineConfig } from 'vitest/config';

// Tests run against the TypeScript sources (the `lockstep-source` export condition), so no build is
// needed first. Setting `conditions` replaces Vite's defaults, so they are repeated here.
const conditions = ['lockstep-source', 'module', 'node', 'development|production'];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ['lockstep-source'] } },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'examples/*/src/**/*.test.ts'],
    reporters: ['default', './scripts/countReporter.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
