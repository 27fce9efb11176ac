import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileEventStore, type EventStore } from '@lockstep/server';
import { describeEventStoreConformance } from '@lockstep/testkit';
import { afterAll } from 'vitest';

/** The event store contract, on real files, with every case also checked across a close and reopen. */
const root = mkdtempSync(join(tmpdir(), 'lockstep-file-conformance-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let next = 0;

describeEventStoreConformance('file event store', () => FileEventStore.open(join(root, `store-${next++}`)), {
  reopen: async (store: EventStore) => {
    await store.close();
    return FileEventStore.open((store as FileEventStore).directory);
  },
});

// The same contract with durability 'os' and a tiny rewrite threshold, so every case also runs
// through log rewrites (compaction of the files) between its steps.
describeEventStoreConformance(
  'file event store (os durability, rewriting constantly)',
  () => FileEventStore.open(join(root, `store-${next++}`), { durability: 'os', rewriteBytes: 1 }),
  {
    reopen: async (store: EventStore) => {
      await store.close();
      return FileEventStore.open((store as FileEventStore).directory, { durability: 'os', rewriteBytes: 1 });
    },
  },
);
