/**
 * The manager's side of seed 004: a Lockstep client that serves `manager` (its panes) to the
 * orchestrator, listens to its progress, requires an orchflow orchestrator of a compatible version,
 * and keeps the shared streams `tasks/orchflow` and `focus/orchflow` — its local view, which stays
 * readable (and writable, optimistically) while the orchestrator is down.
 */
import { createClient, type LockstepClient, type SyncedStream } from '@lockstep/client';
import { focusDomain, tasksDomain, type ParamsOutput, type FocusState, type TasksState, type Transport } from '@lockstep/core';
import { Subject, combineLatest, distinctUntilChanged, filter, firstValueFrom, map, timeout } from 'rxjs';
import { say } from './report.js';
import { MANAGER_APP, PROJECT, manager, orchestrate, type PaneType } from './services.js';

export type Progress = ParamsOutput<typeof orchestrate.progress>;

export interface ManagerClient {
  readonly client: LockstepClient;
  readonly tasks: SyncedStream<typeof tasksDomain>;
  readonly focus: SyncedStream<typeof focusDomain>;
  /** The panes the orchestrator asked for, by id. */
  readonly panes: ReadonlyMap<string, { type: PaneType; command: string }>;
  readonly progress: Subject<Progress>;
  /** Resolves once the state of the tasks (and the focus) stream satisfies `test` (rejects after 15 s). */
  until(test: (tasks: TasksState, focus: FocusState) => boolean): Promise<void>;
}

export function createManagerClient(connect: () => Transport | Promise<Transport>): ManagerClient {
  const panes = new Map<string, { type: PaneType; command: string }>();
  const progress = new Subject<Progress>();
  const client = createClient({ connect, clientId: 'manager', app: MANAGER_APP, backoff: { initialMs: 100, maxMs: 1_000 } });
  // Served right after createClient, so the first hello announces it: the orchestrator may call it.
  client.serve(manager, {
    createPane: ({ type, command }) => {
      const paneId = `pane-${panes.size + 1}`;
      panes.set(paneId, { type, command });
      say('manager', `← manager.createPane ${type} "${command}": opened ${paneId}`);
      return { paneId };
    },
  });
  client.on(orchestrate.progress, (params) => {
    say('manager', `← orchestrate.progress ${params.agent}: ${params.stage} "${params.command}"`);
    progress.next(params);
  });
  client.status$
    .pipe(
      map((status) => status.status),
      distinctUntilChanged(),
    )
    .subscribe((status) => say('link', status));
  const tasks = client.stream(tasksDomain, PROJECT);
  const focus = client.stream(focusDomain, PROJECT);
  return {
    client,
    tasks,
    focus,
    panes,
    progress,
    until: (test) =>
      firstValueFrom(
        combineLatest([tasks.state$, focus.state$]).pipe(
          filter(([tasksState, focusState]) => test(tasksState, focusState)),
          timeout({ first: 15_000 }),
        ),
      ).then(() => undefined),
  };
}

/** One line of the manager's view of the shared streams. */
export function describeView({ tasks, focus }: Pick<ManagerClient, 'tasks' | 'focus'>): string {
  const state = tasks.getSnapshot();
  const list = Object.values(state.tasks).map(
    (task) => `${task.id} "${task.title}" ${task.status}${task.sessionIds.length ? ` in ${task.sessionIds.join(', ')}` : ''}`,
  );
  const pending = tasks.pendingCommands.length + focus.pendingCommands.length;
  return `tasks/${PROJECT} v${tasks.version}: ${list.join('; ') || 'none'} · focused [${focus.getSnapshot().focused.join(', ')}]${pending ? ` · ${pending} pending` : ''}`;
}
