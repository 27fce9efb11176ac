// Runs two testkit suites under node:test (not vitest): what a user on node:test writes. Started by
// src/runner.test.ts as `node --test`, with the sources resolved through the lockstep-source condition.
import { describe, it } from 'node:test';
import { createMemoryLink } from '@lockstep/core';
import { MemoryEventStore } from '@lockstep/server';
import { expect } from 'vitest';
import { describeEventStoreConformance, describeTransportConformance } from '../src/index.js';

const runner = { describe, it, expect };

describeTransportConformance(
  'memory transport under node:test',
  () => {
    const link = createMemoryLink();
    return { client: link.client, server: link.server };
  },
  { runner },
);
describeEventStoreConformance('memory event store under node:test', () => new MemoryEventStore(), { presence: true, runner });
