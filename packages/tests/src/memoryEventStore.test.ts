import { MemoryEventStore } from '@lockstep/server';
import { describeEventStoreConformance } from '@lockstep/testkit';

describeEventStoreConformance('memory event store', () => new MemoryEventStore(), { presence: true });
