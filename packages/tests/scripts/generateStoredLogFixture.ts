/**
 * Writes the golden stored-log fixture: a few streams of the built-in domains as a store holds them
 * (commits with command ids, fingerprints and events with their schema versions), with one
 * `task.created` event in its version-1 shape, and the state each stream must fold to.
 *
 *   node --conditions=lockstep-source --import tsx packages/tests/scripts/generateStoredLogFixture.ts stored-log-v1
 *
 * Like the wire fixtures, it is written once and never regenerated: every later release must load it.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { applyCommand, builtInDomains, fingerprint, type AnyDomain } from '@lockstep/core';
import type { Commit, StoredEvent } from '@lockstep/server';

const name = process.argv[2];
if (!name || !/^stored-log-v\d+$/.test(name)) {
  console.error('usage: generateStoredLogFixture.ts stored-log-vN');
  process.exit(2);
}
const target = fileURLToPath(new URL(`../src/fixtures/${name}.json`, import.meta.url));
if (existsSync(target)) {
  console.error(`${target} exists; golden fixtures are never regenerated`);
  process.exit(1);
}

const domains = new Map<string, AnyDomain>(builtInDomains.map((d) => [d.name, d]));
const script: Array<[string, string, unknown, string?]> = [
  ['orchestration/default', 'workspace.setDesired', { workspaceId: '/work/api', desired: 2, lease: true }, 'ide-1'],
  ['orchestration/default', 'workspace.setDesired', { workspaceId: '/work/web', desired: 1 }, 'ide-2'],
  ['orchestration/default', 'workspace.setRunning', { workspaceId: '/work/api', running: 1 }, 'ide-1'],
  ['tasks/proj_123', 'task.create', { id: 'task_auth', title: 'Refactor auth', priority: 'high' }],
  ['tasks/proj_123', 'task.create', { title: 'Write docs' }],
  ['tasks/proj_123', 'session.create', { id: 'agent-1', name: 'Claude #1', kind: 'agent' }],
  ['tasks/proj_123', 'session.addTask', { sessionId: 'agent-1', taskId: 'task_auth' }],
  ['tasks/proj_123', 'task.update', { id: 'task_auth', status: 'completed' }],
  ['focus/proj_123', 'focus.setMany', { sessionIds: ['t1', 't2', 't3'] }],
  ['focus/proj_123', 'focus.set', { sessionId: 't4' }],
  ['focus/proj_123', 'focus.touch', { sessionId: 't1' }],
  ['focus/proj_123', 'focus.set', { sessionId: 't5' }],
];

interface StreamLog {
  commits: Commit[];
  state: unknown;
  version: number;
}
const streams = new Map<string, StreamLog>();
let now = Date.UTC(2026, 10, 21, 9, 0, 0);
script.forEach(([stream, type, payload, clientId], index) => {
  const domain = domains.get(stream.split('/')[0]!)!;
  const entry: StreamLog = streams.get(stream) ?? { commits: [], state: domain.initialState(), version: 0 };
  const id = `golden-${index}`;
  now += 1_000;
  const applied = applyCommand(domain, entry.state, { id, type, payload }, { now, version: entry.version, stream, clientId });
  const events: StoredEvent[] = applied.events.map((event) => {
    const schemaVersion = domain.eventVersion(event.type);
    return schemaVersion === 1 ? event : { ...event, schemaVersion };
  });
  entry.commits.push({ commandId: id, fingerprint: fingerprint([stream, type, payload]), events });
  entry.state = applied.state;
  entry.version = applied.version;
  streams.set(stream, entry);
});

// A task created by an older release: `task.created` v1 had no priority (upcast to 'medium').
const tasks = streams.get('tasks/proj_123')!;
const legacy = tasks.commits[1]!.events[0]!;
delete (legacy.data as { priority?: string }).priority;
delete legacy.schemaVersion;
const legacyId = (legacy.data as { id: string }).id;
(tasks.state as { tasks: Record<string, { priority: string }> }).tasks[legacyId]!.priority = 'medium';

const fixture = [...streams].map(([stream, { commits, state, version }]) => ({ stream, version, commits, state }));
writeFileSync(target, `${JSON.stringify(fixture, null, 2)}\n`);
console.log(`wrote ${fixture.length} streams to ${target}`);
