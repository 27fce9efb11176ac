/**
 * `pnpm sidecar`: a host (think of the Rust manager of seed 004, or an IDE) runs a Lockstep hub as a
 * child process over stdio, syncs with it through a client, kills it mid-run, and watches the
 * sidecar restart it and the client recover — then shows the fallback when a sidecar is missing.
 *
 * The child is src/child.ts, a hub on a memory store: a restarted child comes back empty under a new
 * epoch, and the client resets its streams rather than keep state the new hub does not have. (With
 * `lockstep serve --stdio --store file:DIR`, acknowledged work would be back after the restart.)
 */
import { createClient } from '@lockstep/client';
import { focusDomain, tasksDomain, type FocusState, type TasksState } from '@lockstep/core';
import { SidecarUnavailableError, createSidecar, type SidecarEvent } from '@lockstep/stdio';
import { distinctUntilChanged, filter, firstValueFrom, map } from 'rxjs';
import { fileURLToPath } from 'node:url';

const say = (who: string, what: string) => console.log(`  ${who.padEnd(8)} ${what}`);
const short = (id: string) => id.slice(0, 8);

function describeEvent(event: SidecarEvent): string {
  switch (event.type) {
    case 'spawned':
      return `spawned the hub, pid ${event.pid}`;
    case 'negotiated': {
      const { protocol, serverId, epoch, domains, capabilities } = event.info;
      return `negotiated: protocol ${protocol}, server ${short(serverId)}, epoch ${short(epoch)}, domains ${domains.join(', ')}, codecs ${String(capabilities['codecs'])}`;
    }
    case 'unhealthy':
      return `pid ${event.pid} is unhealthy: ${event.reason}`;
    case 'exited':
      return `pid ${event.pid} ${event.signal ? `was killed by ${event.signal}` : `exited with code ${event.code}`}${event.expected ? '' : ' (unexpected)'} after ${Math.round(event.uptimeMs)} ms`;
    case 'restarting':
      return `will restart it in ${event.delayMs} ms (restart ${event.restart})`;
    case 'protocolError':
      return `unreadable frame from pid ${event.pid}: ${event.error.message}`;
    case 'unavailable':
      return `unavailable (${event.error.reason}): ${event.error.message}`;
    case 'closed':
      return 'closed';
  }
}

function summary(tasks: TasksState, focus: FocusState): string {
  const list = Object.values(tasks.tasks).map((task) => `"${task.title}" (${task.status})`);
  return `tasks: ${list.length ? list.join(', ') : 'none'} · sessions: ${Object.keys(tasks.sessions).join(', ') || 'none'} · focused: [${focus.focused.join(', ')}]`;
}

console.log('Lockstep sidecar example: a host runs a hub as a child process over stdio\n');

const sidecar = createSidecar({
  command: process.execPath,
  // The child runs with the host's own Node flags (the TypeScript loader, the source condition).
  args: [...process.execArgv, fileURLToPath(new URL('./child.ts', import.meta.url))],
  restart: { initialMs: 200, maxMs: 2_000 },
  pingIntervalMs: 1_000,
  stderr: (text) => {
    for (const line of text.trimEnd().split('\n')) say('child', line);
  },
});
sidecar.events.subscribe((event) => say('sidecar', describeEvent(event)));

const client = createClient({ connect: sidecar.connect, clientId: 'ide-host', backoff: { initialMs: 100, maxMs: 1_000 } });
client.status$
  .pipe(
    map((status) => status.status),
    distinctUntilChanged(),
  )
  .subscribe((status) => say('client', status));

const tasks = client.stream(tasksDomain, 'proj_123');
const focus = client.stream(focusDomain, 'proj_123');
const first = await sidecar.negotiate();

say('host', 'creates tasks "Refactor auth" and "Write docs", session agent-1 linked to the first, and focuses two terminals');
await tasks.dispatch({ type: 'task.create', payload: { id: 'task_auth', title: 'Refactor auth', priority: 'high' } });
await tasks.dispatch({ type: 'task.create', payload: { id: 'task_docs', title: 'Write docs' } });
await tasks.dispatch({ type: 'session.create', payload: { id: 'agent-1', name: 'Claude #1', kind: 'agent' } });
await tasks.dispatch({ type: 'session.addTask', payload: { sessionId: 'agent-1', taskId: 'task_auth' } });
await focus.dispatch({ type: 'focus.setMany', payload: { sessionIds: ['term-1', 'term-2'] } });
say('host', `tasks v${tasks.version}, focus v${focus.version} · ${summary(tasks.getSnapshot(), focus.getSnapshot())}`);

say('host', `kills the sidecar with SIGKILL (pid ${first.pid})`);
const renegotiated = firstValueFrom(sidecar.events.pipe(filter((event) => event.type === 'negotiated')));
process.kill(first.pid, 'SIGKILL');
say('host', 'meanwhile creates task "Triage the crash" (pending until a hub acknowledges it)');
const duringOutage = tasks.dispatch({ type: 'task.create', payload: { id: 'task_triage', title: 'Triage the crash' } });

const second = await renegotiated;
const secondEpoch = second.type === 'negotiated' ? second.info.epoch : '';
await duringOutage;
await client.whenIdle();
say(
  'host',
  `new epoch ${short(secondEpoch)} ≠ ${short(first.epoch)}: the memory hub started empty, so the client reset its streams ` +
    'and re-sent the pending command; nothing stale is left',
);
say('host', `tasks v${tasks.version}, focus v${focus.version} · ${summary(tasks.getSnapshot(), focus.getSnapshot())}`);

say('host', 'carries on: starts agent-2 on the triage task and focuses its terminal');
await tasks.dispatch({ type: 'session.create', payload: { id: 'agent-2', name: 'Claude #2', kind: 'agent' } });
await tasks.dispatch({ type: 'session.addTask', payload: { sessionId: 'agent-2', taskId: 'task_triage' } });
await tasks.dispatch({ type: 'task.update', payload: { id: 'task_triage', status: 'in_progress' } });
await focus.dispatch({ type: 'focus.set', payload: { sessionId: 'term-3' } });
await client.whenIdle();

const finalTasks = tasks.confirmed.state;
const finalFocus = focus.confirmed.state;
const converged =
  tasks.pendingCommands.length === 0 &&
  focus.pendingCommands.length === 0 &&
  JSON.stringify(tasks.getSnapshot()) === JSON.stringify(finalTasks) &&
  Object.keys(finalTasks.tasks).join() === 'task_triage' &&
  finalTasks.tasks['task_triage']?.status === 'in_progress' &&
  finalFocus.focused.join() === 'term-3';
console.log('\nConverged state (confirmed by the restarted hub):\n');
console.log(`  tasks/proj_123 v${tasks.version}: ${summary(finalTasks, finalFocus)}`);
console.log(`  server ${short(client.status.serverId ?? '')}, epoch ${short(secondEpoch)}, ${converged ? 'in sync, nothing pending' : 'NOT CONVERGED'}\n`);

client.close();
await sidecar.close();

// The fallback signal: a host whose sidecar is missing learns it at once and carries on without it.
const missing = createSidecar({ command: 'lockstep-sidecar-not-installed' });
try {
  await missing.negotiate();
} catch (error) {
  if (!(error instanceof SidecarUnavailableError)) throw error;
  say('host', `a second sidecar is ${error.reason} (${error.message}): falling back to working without it`);
}
await missing.close();

if (!converged) process.exit(1);
