import { readFileSync } from 'node:fs';
import { createClient } from '@lockstep/client';
import { builtInDomains, canonicalJson, createMemoryLink, focusDomain, orchestrationDomain, tasksDomain } from '@lockstep/core';
import { Hub, MemoryEventStore, type Commit } from '@lockstep/server';
import { describe, expect, it } from 'vitest';

/**
 * A log written by release 1 (packages/tests/scripts/generateStoredLogFixture.ts, never
 * regenerated) must load in every later release: same states, same versions, old event shapes
 * upcast, command dedup intact.
 */
interface StoredStream {
  stream: string;
  version: number;
  commits: Commit[];
  state: unknown;
}
const fixture = JSON.parse(readFileSync(new URL('./fixtures/stored-log-v1.json', import.meta.url), 'utf8')) as StoredStream[];

async function loadedHub() {
  const store = new MemoryEventStore();
  for (const { stream, commits } of fixture) await store.append(stream, 0, commits);
  return new Hub({ domains: builtInDomains, store, onError: () => {} });
}

describe('golden stored log v1', () => {
  it('holds a version-1 task.created event, so the upcaster is really exercised', () => {
    const tasks = fixture.find((entry) => entry.stream === 'tasks/proj_123')!;
    const legacy = tasks.commits.flatMap((commit) => commit.events).filter((event) => event.type === 'task.created' && !event.schemaVersion);
    expect(legacy).toHaveLength(1);
    expect(legacy[0]!.data).not.toHaveProperty('priority');
  });

  it.each(fixture.map((entry) => [entry.stream, entry] as const))('%s folds to the recorded state and version', async (_, entry) => {
    const hub = await loadedHub();
    const { state, version } = await hub.read(entry.stream);
    expect(version).toBe(entry.version);
    expect(canonicalJson(state)).toBe(canonicalJson(entry.state));
    await hub.close();
  });

  it('serves the upcast events to a client that replays from version 0, ending in the recorded state', async () => {
    const hub = await loadedHub();
    const client = createClient({
      connect: () => {
        const link = createMemoryLink();
        hub.accept(link.server);
        return link.client;
      },
    });
    const streams = [client.stream(orchestrationDomain, 'default'), client.stream(tasksDomain, 'proj_123'), client.stream(focusDomain, 'proj_123')];
    await client.whenIdle();
    for (const stream of streams) {
      const entry = fixture.find((candidate) => candidate.stream === stream.name)!;
      expect(stream.version).toBe(entry.version);
      expect(canonicalJson(stream.getSnapshot())).toBe(canonicalJson(entry.state));
    }
    const tasks = streams[1]!.getSnapshot() as { tasks: Record<string, { priority: string }> };
    expect(
      Object.values(tasks.tasks)
        .map((task) => task.priority)
        .sort(),
    ).toEqual(['high', 'medium']);
    client.close();
    await hub.close();
  });

  it('still deduplicates the command ids of the old log', async () => {
    const hub = await loadedHub();
    const ack = await hub.execute({
      id: 'golden-0',
      stream: 'orchestration/default',
      type: 'workspace.setDesired',
      payload: { workspaceId: '/work/api', desired: 2, lease: true },
    });
    expect(ack).toEqual({ id: 'golden-0', stream: 'orchestration/default', version: 1, duplicate: true });
    await hub.close();
  });
});
