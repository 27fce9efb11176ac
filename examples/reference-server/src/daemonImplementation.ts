import { randomUUID } from 'node:crypto';
import { LockstepError, deterministicIds, type ParamsOutput, type TasksState } from '@lockstep/core';
import type { TerminalManager } from '@lockstep/pty';
import type { Hub, ServiceContext, ServiceImplementation } from '@lockstep/server';
import type { DaemonStatus } from './daemonStatus.js';
import { daemonService, type DaemonService, type SessionStatus } from './daemonService.js';
import { sessionNotFound, stopSession } from './sessionControl.js';
import { SessionWatches } from './sessionWatches.js';
import { profileFields, promptOf, startSessionCommands, type ProfileChoice, type TasksCommand } from './taskSession.js';

export interface DaemonImplementationOptions {
  hub: Hub;
  /** The sessions' programs: status views, profiles, stop (`SessionTerminals`, once started). */
  daemon: DaemonStatus;
  /** The terminals the sessions' programs run in (the terminal extension's manager). */
  terminals: TerminalManager;
  onError: (error: unknown, context: string) => void;
}

type Params<K extends 'spawnSession' | 'executeTask' | 'sessionStatus' | 'stopSession' | 'watch' | 'unwatch'> = ParamsOutput<DaemonService[K]>;

/**
 * Serves `daemonService` (daemonService.ts) for the sessions of `tasks/<daemon.project>` — `hub.serve(
 * implementation.service, implementation.handlers, implementation.options)`. Nothing here decides
 * what a session is or runs: each method goes the way the REST API and the dashboard go — commands of
 * the tasks domain through `hub.execute` as the caller (so the hub's `authorize` hook, the domain's
 * schemas and rules and the server's profile check apply), the status `DaemonStatus` computes, the
 * stop `POST /api/sessions/:id/stop` makes — and the methods are authorized first by the hub's hook
 * as `call` (no rule of the service's own).
 */
export function daemonImplementation(options: DaemonImplementationOptions): ServiceImplementation<DaemonService> {
  const { hub, daemon } = options;
  const stream = `tasks/${daemon.project}`;
  const watches = new SessionWatches({ hub, daemon, terminals: options.terminals, onError: options.onError });

  /** One command of the tasks stream, as the caller, under a command id of its own. */
  const run = (command: TasksCommand, context: ServiceContext) =>
    hub.execute({ id: `daemon:${randomUUID()}`, stream, type: command.type, payload: command.payload }, { identity: context.identity });

  async function statusOf(sessionId: string, context: ServiceContext): Promise<SessionStatus> {
    const session = await daemon.session(context.identity, sessionId);
    if (!session) throw sessionNotFound(sessionId);
    return session;
  }

  /** `watch: true` asks for the right to watch before anything is created, and watches once it is. */
  async function watchIf(watch: boolean | undefined, sessionId: string, context: ServiceContext, created: () => Promise<void>): Promise<void> {
    if (watch) await watches.authorizeWatch(context.peer, sessionId);
    await created();
    if (watch) await watches.watch(context.peer, sessionId);
  }

  async function spawnSession({ sessionId: given, name, profile, prompt, watch }: Params<'spawnSession'>, context: ServiceContext): Promise<SessionStatus> {
    const sessionId = given ?? newSessionId();
    await watchIf(watch, sessionId, context, async () => {
      await run(
        {
          type: 'session.create',
          payload: {
            id: sessionId,
            kind: 'agent',
            ...(name !== undefined && { name }),
            ...(profile !== undefined && { profile }),
            ...(prompt !== undefined && { prompt }),
          },
        },
        context,
      );
    });
    return statusOf(sessionId, context);
  }

  async function executeTask(params: Params<'executeTask'>, context: ServiceContext) {
    const sessionId = params.sessionId ?? newSessionId();
    const profile = profileChoice(params.profile);
    let taskId = params.taskId;
    await watchIf(params.watch, sessionId, context, async () => {
      if (params.task) {
        // The profile and prompt are checked again when the session is created; checked first here,
        // a refused one leaves no task behind.
        const { title, description = '', prompt } = params.task;
        if (profile)
          daemon.profiles?.check(profile.name, profileFields(profile, promptOf({ title, description, ...(prompt !== undefined && { prompt }) })).prompt);
        taskId = newId('task');
        await run({ type: 'task.create', payload: { id: taskId, ...params.task } }, context);
      }
      const { state } = await hub.read(stream, { identity: context.identity });
      const task = Object.hasOwn((state as TasksState).tasks, taskId!) ? (state as TasksState).tasks[taskId!]! : undefined;
      if (!task) throw new LockstepError('COMMAND_REJECTED', `no task ${taskId}`, { reason: 'task.notFound', id: taskId });
      // The dashboard's "Start session", run here one command after the other.
      for (const command of startSessionCommands(task, { sessionId, kind: 'agent', profile })) await run(command, context);
    });
    return { taskId: taskId!, sessionId, session: await statusOf(sessionId, context) };
  }

  /** The profile a session started on a task runs (named, else the server's default), and whether it takes the task's prompt. */
  function profileChoice(name: string | undefined): ProfileChoice | undefined {
    const profiles = daemon.profiles;
    const profile = profiles?.get(name ?? profiles.defaultName);
    if (profile) return { name: profile.name, acceptsPrompt: profile.prompt !== 'none' };
    // Not one of this server's: the session's creation is refused with `profile.unknown`.
    return name === undefined ? undefined : { name, acceptsPrompt: false };
  }

  async function daemonStatus(_params: undefined, context: ServiceContext) {
    const { sessions: _sessions, ...status } = await daemon.read(context.identity);
    return { ...status, profiles: daemon.profiles?.list() ?? [], defaultProfile: daemon.profiles?.defaultName ?? null };
  }

  return {
    service: daemonService,
    handlers: {
      spawnSession,
      executeTask,
      sessionStatus: ({ sessionId }: Params<'sessionStatus'>, context) => statusOf(sessionId, context),
      stopSession: async ({ sessionId, signal }: Params<'stopSession'>, context) => {
        const stopped = await stopSession(hub, daemon, context.identity, daemon.project, sessionId, signal);
        return { stopped, session: await statusOf(sessionId, context) };
      },
      daemonStatus,
      watch: ({ sessionId, since }: Params<'watch'>, context) => watches.watch(context.peer, sessionId, since),
      unwatch: ({ sessionId }: Params<'unwatch'>, context) => ({ watching: watches.unwatch(context.peer, sessionId) }),
    },
    options: {
      onPeerClosed: (peer) => watches.peerClosed(peer),
      onReauthorize: (peer) => watches.reauthorize(peer),
      close: () => watches.close(),
    },
  };
}

/** Ids made here as the REST API makes them for a body without one. */
function newId(prefix: 'sess' | 'task'): string {
  return deterministicIds(`daemon:${randomUUID()}`)(prefix);
}

const newSessionId = () => newId('sess');
