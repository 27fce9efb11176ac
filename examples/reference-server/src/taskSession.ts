import type { CommandOf, SessionKind, Task, tasksDomain } from '@lockstep/core';

/**
 * "Start session" on a task, as commands of the tasks domain — one definition for the dashboard's
 * button (which dispatches them over its WebSocket) and the daemon service's `executeTask` (which runs
 * them through the hub as the caller). Browser-safe: no Node imports.
 */

export type TasksCommand = CommandOf<typeof tasksDomain>;

/** A profile as a session picks it: its name, and whether it takes a prompt. */
export interface ProfileChoice {
  name: string;
  acceptsPrompt: boolean;
}

/**
 * The `session.create` fields for a session running `profile`: its name, and the prompt if the
 * profile takes one (an empty prompt is none). None without a profile (the server runs its default).
 */
export function profileFields(profile: ProfileChoice | undefined, prompt?: string): { profile?: string; prompt?: string } {
  if (!profile) return {};
  return { profile: profile.name, ...(profile.acceptsPrompt && prompt !== undefined && prompt !== '' && { prompt }) };
}

/** What an agent working on the task is told: its prompt, else its title and description. */
export function promptOf(task: Pick<Task, 'title' | 'description' | 'prompt'>): string {
  return task.prompt || [task.title, task.description].filter(Boolean).join('\n\n');
}

export interface StartSessionOptions {
  /** The new session's id (made by the caller, so the commands after the first can name it). */
  sessionId: string;
  kind: SessionKind;
  /** What it runs: given the task's prompt when it takes one. Default: the server's default profile. */
  profile?: ProfileChoice | undefined;
}

/**
 * The commands that start a session on `task`, in order: the session (named after the task, running
 * `profile` with the task's prompt), its link to the task, and — for a pending task — the task moved to
 * `in_progress`. Each is its own command: one refused leaves the ones before it applied.
 */
export function startSessionCommands(task: Pick<Task, 'id' | 'title' | 'description' | 'prompt' | 'status'>, options: StartSessionOptions): TasksCommand[] {
  const { sessionId, kind, profile } = options;
  const commands: TasksCommand[] = [
    { type: 'session.create', payload: { id: sessionId, name: task.title.slice(0, 60), kind, ...profileFields(profile, promptOf(task)) } },
    { type: 'session.addTask', payload: { sessionId, taskId: task.id } },
  ];
  if (task.status === 'pending') commands.push({ type: 'task.update', payload: { id: task.id, status: 'in_progress' } });
  return commands;
}
