// The fake clock lives in `@lockstep/core/testing` (browser-safe, no test library); the testkit keeps
// exporting it for the users who import it from here.
export { FakeClock } from '@lockstep/core/testing';
