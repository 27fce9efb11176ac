/**
 * `@lockstep/core/testing`: tools to test domains, transports and peers with any test runner — a
 * raw-frame {@link TestPeer}, a {@link FakeClock}, and {@link describeDomainLaws}, property checks
 * every domain should pass. Browser-safe; no dependency on a test library.
 */
export { DOMAIN_LAWS_DEFAULTS, canonical, describeDomainLaws, type CommandGenerators, type DomainLawsOptions } from './domainLaws.js';
export { FakeClock } from './fakeClock.js';
export { TEST_PEER_TIMEOUT_MS, TestPeer, type PeerMessage, type TestPeerOptions } from './testPeer.js';
export type { TestRunner } from './testRunner.js';
