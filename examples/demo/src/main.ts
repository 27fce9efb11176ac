/**
 * `pnpm demo`: one hub, five in-memory clients, a scripted scenario from the seeds, and the
 * converged state every client ends with.
 *
 *   - two IDE instances set their workspaces' desired agent counts (leased to each IDE);
 *   - an agents UI creates a task and a session and links them;
 *   - a CLI completes the task;
 *   - a terminal view focuses a fifth session, which evicts the least recently active one;
 *   - IDE 1 closes: once its lease expires, the hub removes its workspace and the totals drop.
 */
import { createClient, type LockstepClient } from '@lockstep/client';
import { builtInDomains, createMemoryLink, focusDomain, orchestrationDomain, sessionCount, tasksDomain } from '@lockstep/core';
import { Hub } from '@lockstep/server';

const LEASE_GRACE_MS = 300;
const hub = new Hub({ domains: builtInDomains, leaseGraceMs: LEASE_GRACE_MS });

function connectAs(clientId: string): LockstepClient {
  return createClient({
    clientId,
    connect: () => {
      const link = createMemoryLink();
      hub.accept(link.server);
      return link.client;
    },
  });
}

const say = (who: string, what: string) => console.log(`  ${who.padEnd(10)} ${what}`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const ide1 = connectAs('ide-1');
const ide2 = connectAs('ide-2');
const ui = connectAs('agents-ui');
const cli = connectAs('maestro-cli');
const terminals = connectAs('terminal-view');
const clients = [ide1, ide2, ui, cli, terminals];

console.log('Lockstep demo: one hub, five clients over in-memory transports\n');

const orchestration = clients.map((client) => client.stream(orchestrationDomain, 'default'));
const tasks = clients.map((client) => client.stream(tasksDomain, 'proj_123'));
const focus = clients.map((client) => client.stream(focusDomain, 'proj_123'));

say('ide-1', 'sets desired = 1 for /work/api (leased to ide-1)');
await orchestration[0]!.dispatch({ type: 'workspace.setDesired', payload: { workspaceId: '/work/api', desired: 1, lease: true } });
say('ide-2', 'sets desired = 2 for /work/web (leased to ide-2)');
await orchestration[1]!.dispatch({ type: 'workspace.setDesired', payload: { workspaceId: '/work/web', desired: 2, lease: true } });

say('agents-ui', 'creates task "Refactor auth" and session agent-1, and links them');
const uiTasks = tasks[2]!;
await uiTasks.dispatch({ type: 'task.create', payload: { id: 'task_auth', title: 'Refactor auth', priority: 'high' } });
await uiTasks.dispatch({ type: 'session.create', payload: { id: 'agent-1', name: 'Claude #1', kind: 'agent' } });
await uiTasks.dispatch({ type: 'session.addTask', payload: { sessionId: 'agent-1', taskId: 'task_auth' } });

say('maestro-cli', 'marks task_auth completed');
await tasks[3]!.dispatch({ type: 'task.update', payload: { id: 'task_auth', status: 'completed' } });

const view = focus[4]!;
for (const sessionId of ['term-1', 'term-2', 'term-3', 'term-4']) {
  await view.dispatch({ type: 'focus.set', payload: { sessionId } });
}
say('terminals', 'focused term-1..term-4, then typed in term-1 (so term-2 is now the least active)');
await view.dispatch({ type: 'focus.touch', payload: { sessionId: 'term-1' } });
say('terminals', 'focuses term-5: a 5th focus evicts the least recently active session');
await view.dispatch({ type: 'focus.set', payload: { sessionId: 'term-5' } });

const totalsBefore = orchestration[4]!.getSnapshot().totals;
say('ide-1', `closes (totals now running=${totalsBefore.running} desired=${totalsBefore.desired}); its lease expires after ${LEASE_GRACE_MS} ms`);
ide1.close();
await sleep(LEASE_GRACE_MS + 100);

for (const client of clients.slice(1)) await client.whenIdle();

console.log('\nConverged state, as every connected client sees it:\n');
for (const [index, client] of clients.entries()) {
  if (index === 0) continue;
  const o = orchestration[index]!.getSnapshot();
  const t = tasks[index]!.getSnapshot();
  const f = focus[index]!.getSnapshot();
  const task = t.tasks['task_auth'];
  console.log(
    `  ${client.clientId.padEnd(14)} orchestration v${orchestration[index]!.version}: ` +
      `workspaces ${Object.keys(o.workspaces).join(', ')} · totals desired=${o.totals.desired} running=${o.totals.running}`,
  );
  console.log(
    `  ${''.padEnd(14)} tasks v${tasks[index]!.version}: task_auth ${task?.status} with ${task ? sessionCount(task) : 0} session(s)` +
      ` · focus v${focus[index]!.version}: [${f.focused.join(', ')}]`,
  );
}

const fingerprints = new Set(
  clients.slice(1).map((_, i) => JSON.stringify([orchestration[i + 1]!.getSnapshot(), tasks[i + 1]!.getSnapshot(), focus[i + 1]!.getSnapshot()])),
);
const truth = await hub.read('focus/proj_123');
console.log(`\n${fingerprints.size === 1 ? 'All clients agree' : 'CLIENTS DISAGREE'} · hub focus stream at v${truth.version}`);
const lost = (await hub.store.read('focus/proj_123', 1, 100)).find((event) => event.type === 'focus.lost');
if (lost) console.log(`Eviction recorded as an event: ${JSON.stringify(lost.data)}`);

for (const client of clients) client.close();
await hub.close();
if (fingerprints.size !== 1) process.exit(1);
