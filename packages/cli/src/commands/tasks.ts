import { SESSION_KINDS, SESSION_STATUSES, TASK_LIMITS, TASK_PRIORITIES, TASK_STATUSES, deterministicIds, tasksDomain, type TasksState } from '@lockstep/core';
import { z } from 'zod';
import { UsageError } from '../options.js';
import { eventsOf, plural, writeJson, writeLine } from './report.js';
import { domainRead, domainWrite, integerArgument, labelOf, parseValue, table, type CommandOutcome, type Input, type Report, type Subcommand } from './spec.js';

const list = (values: readonly string[]) => values.join('|');

/** A write on `tasks/<project>`. */
const tasksWrite = (
  subcommand: Subcommand,
  key: string,
  type: string,
  payload: Record<string, unknown>,
  report: (outcome: CommandOutcome<TasksState>) => Report,
) => domainWrite(tasksDomain, subcommand, key, type, payload, report);

/** An update needs something to change: said here, before anything is sent. */
function requireChange(subcommand: Subcommand, input: Input, fields: readonly string[]): void {
  if (fields.some((field) => input[field] !== undefined)) return;
  throw new UsageError(`needs at least one of ${fields.map((field) => labelOf(subcommand, field)).join(', ')}`);
}

/** The id `decide` gives an entity the command did not name: derived from the command id (SPEC §2). */
const assignedId = (outcome: CommandOutcome, given: unknown, prefix: string) =>
  typeof given === 'string' ? given : deterministicIds(outcome.commandId)(prefix);

const taskCreate: Subcommand = {
  words: ['task', 'create'],
  summary: 'Create a task; prints its id.',
  positionals: [{ name: 'title', help: `the task's title (1–${TASK_LIMITS.title} characters)` }],
  flags: {
    id: { type: 'string', value: 'ID', help: 'its id (default: assigned by the hub)' },
    description: { type: 'string', value: 'TEXT', help: 'a description' },
    priority: { type: 'string', value: 'P', help: `${list(TASK_PRIORITIES)} (default medium)` },
    prompt: { type: 'string', value: 'TEXT', help: 'the prompt for an agent' },
    status: { type: 'string', value: 'S', help: `${list(TASK_STATUSES)} (default pending)` },
  },
  scope: 'project',
  write: true,
  build(input, key) {
    const { title, id, description, priority, prompt, status } = input;
    return tasksWrite(this, key, 'task.create', { title, id, description, priority, prompt, status }, (outcome) => {
      const taskId = assignedId(outcome, id, 'task');
      return { lines: [taskId], json: writeJson(outcome, { id: taskId, task: outcome.state.tasks[taskId] ?? null }) };
    });
  },
};

const taskUpdate: Subcommand = {
  words: ['task', 'update'],
  summary: "Change a task's fields.",
  positionals: [{ name: 'id', help: 'the task' }],
  flags: {
    title: { type: 'string', value: 'TITLE', help: 'a new title' },
    description: { type: 'string', value: 'TEXT', help: 'a new description' },
    status: { type: 'string', value: 'S', help: list(TASK_STATUSES) },
    priority: { type: 'string', value: 'P', help: list(TASK_PRIORITIES) },
    prompt: { type: 'string', value: 'TEXT', help: 'a new prompt' },
    clearPrompt: { type: 'boolean', help: 'remove the prompt' },
  },
  scope: 'project',
  write: true,
  build(input, key) {
    requireChange(this, input, ['title', 'description', 'status', 'priority', 'prompt', 'clearPrompt']);
    if (input['prompt'] !== undefined && input['clearPrompt']) throw new UsageError('--prompt and --clear-prompt exclude each other');
    const { title, description, status, priority } = input;
    const id = input['id'] as string;
    const prompt = input['clearPrompt'] ? null : input['prompt'];
    return tasksWrite(this, key, 'task.update', { id, title, description, status, priority, prompt }, (outcome) => ({
      lines: [writeLine(outcome, `updated ${id}`, `${id} unchanged: it already had these values`)],
      json: writeJson(outcome, { id, task: outcome.state.tasks[id] ?? null }),
    }));
  },
};

const taskDelete: Subcommand = {
  words: ['task', 'delete'],
  summary: 'Delete a task (it is unlinked from its sessions first).',
  positionals: [{ name: 'id', help: 'the task' }],
  flags: {},
  scope: 'project',
  write: true,
  build(input, key) {
    const id = input['id'] as string;
    return tasksWrite(this, key, 'task.delete', { id }, (outcome) => {
      const unlinked = eventsOf(outcome, 'session.taskRemoved').length;
      return {
        lines: [writeLine(outcome, `deleted ${id}${unlinked > 0 ? ` (unlinked from ${plural(unlinked, 'session')})` : ''}`, `deleted ${id}`)],
        json: writeJson(outcome, { id, deleted: true }),
      };
    });
  },
};

const taskList: Subcommand = {
  words: ['task', 'list'],
  summary: 'List the tasks of a project.',
  positionals: [],
  flags: { status: { type: 'string', value: 'S', help: `only tasks with this status: ${list(TASK_STATUSES)}` } },
  scope: 'project',
  build(input, key) {
    const status = parseValue(z.enum(TASK_STATUSES).optional(), input['status'], '--status');
    return domainRead(tasksDomain, key, ({ stream, version, state }) => {
      const tasks = Object.values(state.tasks).filter((task) => status === undefined || task.status === status);
      const lines =
        tasks.length === 0
          ? [`no tasks${status ? ` with status ${status}` : ''} in ${stream}`]
          : table(
              ['ID', 'STATUS', 'PRIORITY', 'SESSIONS', 'TITLE'],
              tasks.map((task) => [task.id, task.status, task.priority, String(task.sessionIds.length), task.title]),
            );
      return { lines, json: { stream, version, tasks } };
    });
  },
};

const sessionCreate: Subcommand = {
  words: ['session', 'create'],
  summary: 'Create an agent session; prints its id. On the reference server it runs a profile (a shell by default).',
  positionals: [],
  flags: {
    id: { type: 'string', value: 'ID', help: 'its id (default: assigned by the hub)' },
    name: { type: 'string', value: 'NAME', help: 'its name (default: its id)' },
    kind: { type: 'string', value: 'K', help: `${list(SESSION_KINDS)} (default agent)` },
    status: { type: 'string', value: 'S', help: `${list(SESSION_STATUSES)} (default starting)` },
    profile: { type: 'string', value: 'NAME', help: "what it runs: one of the server's profiles (GET /api/profiles; default: the server's default)" },
    prompt: { type: 'string', value: 'TEXT', help: "the prompt for its program, if its profile takes one (e.g. a task's prompt)" },
  },
  scope: 'project',
  write: true,
  build(input, key) {
    const { id, name, kind, status, profile, prompt } = input;
    return tasksWrite(this, key, 'session.create', { id, name, kind, status, profile, prompt }, (outcome) => {
      const sessionId = assignedId(outcome, id, 'sess');
      return { lines: [sessionId], json: writeJson(outcome, { id: sessionId, session: outcome.state.sessions[sessionId] ?? null }) };
    });
  },
};

const sessionUpdate: Subcommand = {
  words: ['session', 'update'],
  summary: "Change a session's name, status or exit code (on the reference server a session's program records its status: only --name).",
  positionals: [{ name: 'id', help: 'the session' }],
  flags: {
    name: { type: 'string', value: 'NAME', help: 'a new name' },
    status: { type: 'string', value: 'S', help: list(SESSION_STATUSES) },
    exitCode: { type: 'string', value: 'N', help: 'its exit code (with --status exited|failed, or when it has ended)' },
  },
  scope: 'project',
  write: true,
  build(input, key) {
    requireChange(this, input, ['name', 'status', 'exitCode']);
    const { name, status } = input;
    const id = input['id'] as string;
    const exitCode = parseValue(integerArgument(-(2 ** 31), 2 ** 32 - 1).optional(), input['exitCode'], '--exit-code');
    return tasksWrite(this, key, 'session.update', { id, name, status, exitCode }, (outcome) => ({
      lines: [writeLine(outcome, `updated ${id}`, `${id} unchanged: it already had these values`)],
      json: writeJson(outcome, { id, session: outcome.state.sessions[id] ?? null }),
    }));
  },
};

const sessionDelete: Subcommand = {
  words: ['session', 'delete'],
  summary: 'Delete a session (it is unlinked from its tasks first).',
  positionals: [{ name: 'id', help: 'the session' }],
  flags: {},
  scope: 'project',
  write: true,
  build(input, key) {
    const id = input['id'] as string;
    return tasksWrite(this, key, 'session.delete', { id }, (outcome) => {
      const unlinked = eventsOf(outcome, 'session.taskRemoved').length;
      return {
        lines: [writeLine(outcome, `deleted ${id}${unlinked > 0 ? ` (unlinked from ${plural(unlinked, 'task')})` : ''}`, `deleted ${id}`)],
        json: writeJson(outcome, { id, deleted: true }),
      };
    });
  },
};

const link = (words: readonly string[], type: 'session.addTask' | 'session.removeTask'): Subcommand => ({
  words,
  summary: type === 'session.addTask' ? 'Link a task to a session (both sides are updated).' : 'Unlink a task from a session.',
  positionals: [
    { name: 'sessionId', help: 'the session' },
    { name: 'taskId', help: 'the task' },
  ],
  flags: {},
  scope: 'project',
  write: true,
  build(input, key) {
    const sessionId = input['sessionId'] as string;
    const taskId = input['taskId'] as string;
    return tasksWrite(this, key, type, { sessionId, taskId }, (outcome) => ({
      lines: [
        type === 'session.addTask'
          ? writeLine(outcome, `linked ${sessionId} to ${taskId}`, `${sessionId} was already linked to ${taskId}`)
          : writeLine(outcome, `unlinked ${sessionId} from ${taskId}`, `unlinked ${sessionId} from ${taskId}`),
      ],
      json: writeJson(outcome, { sessionId, taskId, linked: type === 'session.addTask' }),
    }));
  },
});

const sessionList: Subcommand = {
  words: ['session', 'list'],
  summary: 'List the sessions of a project.',
  positionals: [],
  flags: {},
  scope: 'project',
  build(_input, key) {
    return domainRead(tasksDomain, key, ({ stream, version, state }) => {
      const sessions = Object.values(state.sessions);
      const lines =
        sessions.length === 0
          ? [`no sessions in ${stream}`]
          : table(
              ['ID', 'KIND', 'STATUS', 'TASKS', 'NAME'],
              sessions.map((session) => [
                session.id,
                session.kind,
                session.exitCode === undefined
                  ? session.status
                  : `${session.status} (${session.exitCode}${session.signal === undefined ? '' : ` ${session.signal}`})`,
                String(session.taskIds.length),
                session.name,
              ]),
            );
      return { lines, json: { stream, version, sessions } };
    });
  },
};

export const tasksSubcommands: readonly Subcommand[] = [
  taskCreate,
  taskUpdate,
  taskDelete,
  taskList,
  sessionCreate,
  sessionUpdate,
  sessionDelete,
  link(['session', 'add-task'], 'session.addTask'),
  link(['session', 'remove-task'], 'session.removeTask'),
  sessionList,
];
