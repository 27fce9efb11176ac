import type { SerializedError } from 'vitest';
import type { Reporter, TestModule, TestRunEndReason } from 'vitest/node';

/**
 * Prints one plain `N passed, N failed, N skipped` line at the end of a run, which CI counts.
 * A file or suite that fails without a failing test (an import error, an empty suite, an error in
 * a hook) and every unhandled error count as failures too, so the line never says "0 failed" for a
 * red run.
 */
export default class CountReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<SerializedError>, reason: TestRunEndReason): void {
    let passed = 0;
    let failed = unhandledErrors.length;
    let skipped = 0;
    for (const module of testModules) {
      let failedTests = 0;
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed') failedTests++;
        else skipped++;
      }
      failed += failedTests;
      if (failedTests > 0) continue;
      let failedSuites = 0;
      for (const suite of module.children.allSuites()) if (suite.state() === 'failed') failedSuites++;
      if (failedSuites === 0 && module.state() === 'failed') failedSuites = 1;
      failed += failedSuites;
    }
    if (reason === 'failed' && failed === 0) failed = 1;
    process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
