import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createClient } from '@lockstep/client';
import { LockstepError, tasksDomain } from '@lockstep/core';
import { FileEventStore } from '@lockstep/server';
import { createSidecar, type SidecarEvent } from '@lockstep/stdio';
import { afterAll, expect, it, onTestFinished } from 'vitest';

/**
 * Seed 004's host: an IDE extension runs `lockstep serve --stdio --store file:DIR` as a sidecar.
 * The child is killed with SIGKILL several times while the host writes; the sidecar restarts it on
 * the same data directory, the client carries on in the same epoch (no reset), and every command
 * that was acknowledged is in the log exactly once.
 */
const require = createRequire(import.meta.url);
const TSX = pathToFileURL(require.resolve('tsx')).href;
const MAIN = fileURLToPath(new URL('../../cli/src/main.ts', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'lockstep-sidecar-file-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const KILLS = 4;
const COMMANDS = 120;

it(`loses nothing acknowledged when a file-store sidecar is SIGKILLed ${KILLS} times while the host writes`, async () => {
  const directory = join(root, 'data');
  const sidecar = createSidecar({
    command: process.execPath,
    args: ['--conditions=lockstep-source', '--import', TSX, MAIN, 'serve', '--stdio', '--store', `file:${directory}`],
    restart: { initialMs: 20, maxMs: 200 },
    pingIntervalMs: 500,
    killGraceMs: 2_000,
    stderr: () => {},
  });
  const pids: number[] = [];
  const events: SidecarEvent[] = [];
  sidecar.events.subscribe((event) => {
    events.push(event);
    if (event.type === 'spawned') pids.push(event.pid);
  });
  onTestFinished(() => sidecar.close());
  const client = createClient({ connect: sidecar.connect, clientId: 'ide', backoff: { initialMs: 20, maxMs: 200 }, requestTimeoutMs: 10_000 });
  onTestFinished(() => client.close());
  const tasks = client.stream(tasksDomain, 'p1');
  const first = await sidecar.negotiate();

  const acknowledged: string[] = [];
  const writes: Array<Promise<void>> = [];
  let kills = 0;
  for (let i = 0; i < COMMANDS; i++) {
    const id = `t${i}`;
    writes.push(
      tasks.dispatch({ type: 'task.create', payload: { id, title: `task ${i}` } }).then(
        () => void acknowledged.push(id),
        (error: unknown) => {
          // A command is either acknowledged or refused with a reason; a lost one would hang the test.
          throw error instanceof LockstepError ? new Error(`t${i} refused: ${error.code} ${error.message}`) : error;
        },
      ),
    );
    if (i % (COMMANDS / KILLS) === COMMANDS / KILLS / 2) {
      // Kill whatever child is serving right now, mid-stream of commands.
      const info = await sidecar.negotiate();
      process.kill(info.pid, 'SIGKILL');
      kills++;
      // The next kill is for the next child: wait until the sidecar has restarted and negotiated.
      while ((await sidecar.negotiate()).pid === info.pid) await new Promise((resolve) => setTimeout(resolve, 10));
    }
    if (i % 7 === 0) await new Promise((resolve) => setTimeout(resolve, 5));
  }
  await Promise.all(writes);
  await client.whenIdle();
  expect(kills).toBe(KILLS);
  expect(pids.length).toBeGreaterThanOrEqual(KILLS + 1);

  // Same store, same epoch: the client never had to reset, and it holds every task once.
  const last = await sidecar.negotiate();
  expect(last.epoch).toBe(first.epoch);
  expect(acknowledged.sort()).toEqual(Array.from({ length: COMMANDS }, (_, i) => `t${i}`).sort());
  expect(Object.keys(tasks.confirmed.state.tasks).sort()).toEqual(acknowledged);
  expect(tasks.confirmed.version).toBe(COMMANDS);

  // The log on disk, read after the last child is gone: contiguous, each command exactly once.
  client.close();
  await sidecar.close();
  const store = await FileEventStore.open(directory);
  try {
    expect(await store.info('tasks/p1')).toMatchObject({ head: COMMANDS });
    const log = await store.read('tasks/p1', 1, COMMANDS + 10);
    expect(log.map((event) => event.version)).toEqual(Array.from({ length: COMMANDS }, (_, i) => i + 1));
    expect(new Set(log.map((event) => event.commandId)).size).toBe(COMMANDS);
    expect(log.every((event) => event.type === 'task.created')).toBe(true);
  } finally {
    await store.close();
  }
  expect(events.filter((event) => event.type === 'exited' && !event.expected)).toHaveLength(KILLS);
});
