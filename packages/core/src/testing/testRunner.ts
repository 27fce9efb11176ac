/**
 * The test functions a suite needs, so that it runs under any test runner: vitest's or jest's
 * `describe` and `it` fit as they are, and so do `node:test`'s.
 */
export interface TestRunner {
  describe(name: string, body: () => void): unknown;
  it(name: string, body: () => void | Promise<void>): unknown;
}
