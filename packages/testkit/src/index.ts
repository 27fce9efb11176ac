export {
  CHAOS_DEFAULT_FAULTS,
  ConvergenceError,
  checkConvergence,
  runChaos,
  type ChaosConnect,
  type ChaosHubAcceptor,
  type ChaosOptions,
  type ChaosReport,
  type ChaosScenario,
  type ChaosStream,
} from './chaos.js';
export { counterDomain } from './counterDomain.js';
export { FakeClock } from './fakeClock.js';
export { faultyTransport, type FaultyTransport, type FaultyTransportOptions } from './faultyTransport.js';
export { vitestRunner, type TestRunnerAdapter } from './runner.js';
export { describeEventStoreConformance, type EventStoreConformanceOptions, type EventStoreFactory } from './eventStoreConformance.js';
export {
  DEFAULT_LARGE_FRAME_BYTES,
  describeTransportConformance,
  type TransportConformanceOptions,
  type TransportPair,
  type TransportPairFactory,
} from './transportConformance.js';
