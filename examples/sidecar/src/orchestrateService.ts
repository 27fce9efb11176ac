/**
 * The orchestrator's side of seed 004: it serves `orchestrate` on its hub. `route` picks an agent,
 * calls the manager back on the calling connection (`peer.call(manager.createPane, …)`) and records
 * the routed task, the pane's session and the focus in the shared streams, which the manager has
 * subscribed to. `manager.paneClosed` completes the task. Everything it knows lives in the hub's
 * store: a restarted orchestrator on the same file store knows what it routed.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { TasksState } from '@lockstep/core';
import type { Hub } from '@lockstep/server';
import { PROJECT, manager, orchestrate, type PaneType } from './services.js';

/** What the orchestrator decided for a command. */
export interface RouteDecision {
  agent: string;
  paneType: PaneType;
  /** What the pane runs (a shell command, or the file an editor opens). */
  paneCommand: string;
  /** Time the agent takes to think before it asks for a pane (the planner thinks). */
  thinks: boolean;
}

/** The routing table: a stand-in for the seed's AI agent coordination. */
export function decide(command: string): RouteDecision {
  const text = command.toLowerCase();
  const edit = /^(?:edit|open)\s+(\S+)/i.exec(command);
  if (edit) return { agent: 'writer', paneType: 'editor', paneCommand: edit[1]!, thinks: false };
  if (text.includes('test')) return { agent: 'tester', paneType: 'terminal', paneCommand: 'npm test', thinks: false };
  if (text.startsWith('plan')) return { agent: 'planner', paneType: 'editor', paneCommand: 'PLAN.md', thinks: true };
  if (text.startsWith('deploy')) {
    const target = /deploy\s+(\S+)/i.exec(command)?.[1] ?? 'staging';
    return { agent: 'deployer', paneType: 'terminal', paneCommand: `npm run deploy -- ${target}`, thinks: false };
  }
  return { agent: 'generalist', paneType: 'terminal', paneCommand: command, thinks: false };
}

export interface OrchestrateOptions {
  /** How long the planner thinks. Default 1.5 s. */
  thinkMs?: number;
  /** What `status` reports as the store (`file:/tmp/…`, `memory`). */
  store: string;
  log(line: string): void;
}

const TASK_ID = /^route-(\d+)$/;

/** Serves `orchestrate` on `hub` and listens to `manager.paneClosed`. */
export async function serveOrchestrate(hub: Hub, options: OrchestrateOptions): Promise<void> {
  const tasksStream = `tasks/${PROJECT}`;
  const focusStream = `focus/${PROJECT}`;
  const thinkMs = options.thinkMs ?? 1_500;
  const readTasks = async () => (await hub.read(tasksStream)).state as TasksState;
  const routedTasks = (state: TasksState) => Object.keys(state.tasks).filter((id) => TASK_ID.test(id));
  // Task ids continue from what the store holds: a restarted orchestrator never reuses one.
  let lastTask = Math.max(0, ...routedTasks(await readTasks()).map((id) => Number(TASK_ID.exec(id)![1])));
  let thinking = 0;
  // Command ids derive from the task id: unique, and a retry of the same step is deduplicated.
  const run = (id: string, stream: string, type: string, payload: unknown) => hub.execute({ id, stream, type, payload });

  hub.serve(orchestrate, {
    route: async ({ command }, { peer, signal, clientId }) => {
      const decision = decide(command);
      const taskId = `route-${++lastTask}`;
      options.log(`route "${command}" from ${clientId} → ${decision.agent} (${taskId})`);
      if (decision.thinks) {
        thinking++;
        peer.notify(orchestrate.progress, { command, stage: 'thinking', agent: decision.agent });
        try {
          // Stops when the caller cancels or goes away (the handler then answers CANCELLED).
          await sleep(thinkMs, undefined, { signal });
        } finally {
          thinking--;
        }
      }
      peer.notify(orchestrate.progress, { command, stage: 'opening', agent: decision.agent });
      // The call back: the manager opens the pane, on the connection this call came on.
      const { paneId } = await peer.call(manager.createPane, { type: decision.paneType, command: decision.paneCommand }, { signal, timeoutMs: 10_000 });
      await run(`${taskId}:task`, tasksStream, 'task.create', { id: taskId, title: command, status: 'in_progress', prompt: `routed to ${decision.agent}` });
      await run(`${taskId}:pane`, tasksStream, 'session.create', {
        id: paneId,
        name: `${decision.agent}: ${decision.paneCommand}`,
        kind: decision.paneType === 'terminal' ? 'terminal' : 'agent',
        status: 'running',
        profile: decision.agent,
      });
      await run(`${taskId}:link`, tasksStream, 'session.addTask', { sessionId: paneId, taskId });
      await run(`${taskId}:focus`, focusStream, 'focus.set', { sessionId: paneId });
      peer.notify(orchestrate.progress, { command, stage: 'routed', agent: decision.agent });
      return { agent: decision.agent, paneType: decision.paneType, paneId, taskId };
    },
    status: async () => ({ routed: routedTasks(await readTasks()).length, thinking, pid: process.pid, store: options.store }),
  });

  hub.on(manager.paneClosed, ({ paneId, exitCode }) => {
    void (async () => {
      const session = (await readTasks()).sessions[paneId];
      if (!session) return options.log(`paneClosed: no pane ${paneId} was routed here`);
      const status = exitCode === 0 ? 'exited' : 'failed';
      await run(`${paneId}:closed`, tasksStream, 'session.update', { id: paneId, status, exitCode });
      for (const taskId of session.taskIds) {
        await run(`${taskId}:done`, tasksStream, 'task.update', { id: taskId, status: exitCode === 0 ? 'completed' : 'blocked' });
      }
      await run(`${paneId}:blur`, focusStream, 'focus.close', { sessionId: paneId });
      options.log(`pane ${paneId} closed (exit ${exitCode}): ${session.taskIds.join(', ') || 'no task'} ${exitCode === 0 ? 'completed' : 'blocked'}`);
    })().catch((error: unknown) => options.log(`paneClosed ${paneId}: ${error instanceof Error ? error.message : String(error)}`));
  });
}
