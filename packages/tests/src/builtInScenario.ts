import { focusDomain, orchestrationDomain, tasksDomain, type Random, type TasksState } from '@lockstep/core';
import type { ChaosScenario } from '@lockstep/testkit';

const workspaces = ['ws-alpha', 'ws-beta', 'ws-gamma', 'ws-delta', '/home/dev/project one'];
const sessions = ['s1', 's2', 's3', 's4', 's5', 's6', 's7'];
const taskIds = Array.from({ length: 24 }, (_, i) => `t${i + 1}`);
const sessionIds = ['agent-1', 'agent-2', 'agent-3', 'agent-4', 'agent-5', 'agent-6'];
const statuses = ['pending', 'in_progress', 'blocked', 'completed', 'cancelled', 'bogus'] as const;

function some<T>(random: Random, items: readonly T[], max: number): T[] {
  const picked = new Set<T>();
  const count = random.int(max + 1);
  for (let i = 0; i < count; i++) picked.add(random.pick(items));
  return [...picked];
}

/**
 * Random commands over the three built-in domains, with a bias towards valid ones and a steady
 * share of commands the hub must refuse (missing ids, bad values, overfull focus grids).
 */
export const builtInScenario: ChaosScenario = {
  streams: [
    { domain: orchestrationDomain, key: 'default' },
    { domain: focusDomain, key: 'proj_1' },
    { domain: focusDomain, key: 'proj_2' },
    { domain: tasksDomain, key: 'proj_1' },
    { domain: tasksDomain, key: 'proj_2' },
  ],
  nextCommand(random, stream, state) {
    switch (stream.domain.name) {
      case 'orchestration': {
        const workspaceId = random.pick(workspaces);
        const roll = random.int(10);
        if (roll < 5) return { type: 'workspace.setDesired', payload: { workspaceId, desired: random.int(6), ...(random.chance(0.3) ? { lease: true } : {}) } };
        if (roll < 9) return { type: 'workspace.setRunning', payload: { workspaceId, running: random.int(6) } };
        return { type: 'workspace.remove', payload: { workspaceId } };
      }
      case 'focus': {
        const sessionId = random.pick(sessions);
        const roll = random.int(20);
        if (roll < 8) return { type: 'focus.set', payload: { sessionId } };
        if (roll < 11) return { type: 'focus.touch', payload: { sessionId } };
        if (roll < 14) return { type: 'focus.blur', payload: { sessionId } };
        if (roll < 16) return { type: 'focus.close', payload: { sessionId } };
        if (roll < 19) return { type: 'focus.setMany', payload: { sessionIds: some(random, sessions, 6) } };
        return { type: 'focus.configure', payload: { maxFocused: 1 + random.int(6) } };
      }
      default: {
        const tasks = state as TasksState;
        const taskCount = Object.keys(tasks.tasks).length;
        const taskId = random.pick(taskIds);
        const sessionId = random.pick(sessionIds);
        const roll = random.int(20);
        if (roll < 3) return { type: 'task.create', payload: { id: taskId, title: `Task ${taskId}`, priority: random.pick(['low', 'high']) } };
        if (roll < 4 && taskCount < 30) return { type: 'task.create', payload: { title: 'Generated task' } };
        if (roll < 8) return { type: 'task.update', payload: { id: taskId, status: random.pick(statuses) } };
        if (roll < 9) return { type: 'task.update', payload: { id: taskId, title: `Renamed ${random.int(100)}` } };
        if (roll < 11) return { type: 'task.delete', payload: { id: taskId } };
        if (roll < 13) return { type: 'session.create', payload: { id: sessionId, kind: 'agent' } };
        if (roll < 14) return { type: 'session.update', payload: { id: sessionId, status: random.pick(['running', 'idle', 'exited']) } };
        if (roll < 15) return { type: 'session.delete', payload: { id: sessionId } };
        if (roll < 18) return { type: 'session.addTask', payload: { sessionId, taskId } };
        return { type: 'session.removeTask', payload: { sessionId, taskId } };
      }
    }
  },
};
