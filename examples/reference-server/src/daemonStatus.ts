import { systemClock, type Clock, type Session, type TasksState } from '@lockstep/core';
import type { TerminalManager } from '@lockstep/pty';
import type { Hub, Identity } from '@lockstep/server';
import type { Profiles } from './profiles.js';
import type { SessionTerminals, SessionTotals } from './sessionTerminals.js';

/** Where a session's program stands in this server run. */
export type ProcessState = 'starting' | 'waiting' | 'running' | 'exited' | 'failed' | 'none';

/** A session's program, as `GET /api/status` and `GET /api/sessions/:id` show it. */
export interface ProcessView {
  /** `none`: no program in this server run (it had ended before the server started, or the server runs no terminals). */
  state: ProcessState;
  profile?: string;
  pid?: number;
  /** When this run's program started and ended (ms since the epoch, the server's clock). */
  startedAt?: number;
  endedAt?: number;
  /** From start to its end, or to now while it runs. */
  runtimeMs?: number;
  /** Bytes the program has written to its terminal. */
  outputBytes?: number;
  /** Its place in line while it waits for a terminal slot (1 is next). */
  position?: number;
  /** Why it could not start. */
  reason?: string;
}

/** One session with its program, as `GET /api/status` lists it and `daemon.sessionStatus` answers it. */
export type SessionStatusView = Pick<Session, 'id' | 'name' | 'kind' | 'status' | 'exitCode' | 'signal' | 'reason' | 'profile'> & { process: ProcessView };

/** `GET /api/status`: the daemon as seed 003 asks for it. */
export interface StatusView {
  status: 'running' | 'closing';
  serverId: string;
  startedAt: number;
  uptimeMs: number;
  /** The project whose sessions this server runs. */
  projectId: string;
  /** False when the server runs no terminals (`--no-terminals`): no session has a program here. */
  terminals: boolean;
  /** Programs running now. */
  activeSessions: number;
  /** Sessions waiting for a terminal slot. */
  queuedSessions: number;
  maxTerminals: number;
  /** Since the server started: programs started, ended (on their own or stopped), failed to start. */
  totals: SessionTotals;
  /** Every session of the project, newest first, with its program. */
  sessions: SessionStatusView[];
}

export interface DaemonStatusOptions {
  hub: Hub;
  project: string;
  terminals: TerminalManager;
  /** Undefined when the server runs no terminals. */
  profiles: Profiles | undefined;
  /** The session terminals, once started (undefined without terminals). */
  sessions(): SessionTerminals | undefined;
  /** Default: the system clock (the terminals' own). */
  clock?: Clock;
}

/**
 * The daemon's state, computed when asked: uptime, the programs running and waiting, totals since
 * start, and per session its program's pid, times and output. It is a view, not a stream of its own
 * — nothing in it is stored, so watching it writes nothing — and `onChange` says when it moved
 * (a program started, ended, failed, queued; a session came or went).
 */
export class DaemonStatus {
  readonly project: string;
  readonly startedAt: number;
  readonly #options: DaemonStatusOptions;
  readonly #clock: Clock;
  #closing = false;

  constructor(options: DaemonStatusOptions) {
    this.#options = options;
    this.project = options.project;
    this.#clock = options.clock ?? systemClock;
    this.startedAt = this.#clock.now();
  }

  get profiles(): Profiles | undefined {
    return this.#options.profiles;
  }

  get sessions(): SessionTerminals | undefined {
    return this.#options.sessions();
  }

  get closing(): boolean {
    return this.#closing;
  }

  /** The server is shutting down: `/health` and the status say so. */
  markClosing(): void {
    this.#closing = true;
  }

  /** The status, read as `identity` (it shows the sessions of `tasks/<project>`: the `read` grant on it is needed). */
  async read(identity: Identity | undefined): Promise<StatusView> {
    const { state } = await this.#options.hub.read(`tasks/${this.project}`, { identity });
    const sessions = Object.values((state as TasksState).sessions).sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? -1 : 1));
    const views = sessions.map((session) => this.view(session));
    const now = this.#clock.now();
    const terminals = this.sessions;
    return {
      status: this.#closing ? 'closing' : 'running',
      serverId: this.#options.hub.serverId,
      startedAt: this.startedAt,
      uptimeMs: now - this.startedAt,
      projectId: this.project,
      terminals: terminals !== undefined,
      activeSessions: views.filter((view) => view.process.state === 'running').length,
      queuedSessions: views.filter((view) => view.process.state === 'waiting').length,
      maxTerminals: this.#options.terminals.limits.maxTerminals,
      totals: terminals?.totals ?? { started: 0, exited: 0, failed: 0 },
      sessions: views,
    };
  }

  /**
   * One session of the project with its program, read as `identity` (the `read` grant on
   * `tasks/<project>` is needed); undefined when there is no such session.
   */
  async session(identity: Identity | undefined, sessionId: string): Promise<SessionStatusView | undefined> {
    const { state } = await this.#options.hub.read(`tasks/${this.project}`, { identity });
    const { sessions } = state as TasksState;
    return Object.hasOwn(sessions, sessionId) ? this.view(sessions[sessionId]!) : undefined;
  }

  /** A session as the status shows it: what the tasks stream says, and its program in this run. */
  view(session: Session): SessionStatusView {
    return {
      id: session.id,
      name: session.name,
      kind: session.kind,
      status: session.status,
      ...(session.profile !== undefined && { profile: session.profile }),
      ...(session.exitCode !== undefined && { exitCode: session.exitCode }),
      ...(session.signal !== undefined && { signal: session.signal }),
      ...(session.reason !== undefined && { reason: session.reason }),
      process: this.process(session.id),
    };
  }

  /** A session's program in this server run. */
  process(sessionId: string): ProcessView {
    const status = this.sessions?.status(sessionId);
    if (status === undefined || status.state === 'ended') return { state: 'none' };
    switch (status.state) {
      case 'starting':
        return { state: 'starting', profile: status.profile };
      case 'waiting':
        return { state: 'waiting', profile: status.profile, position: status.position };
      case 'failed':
        return { state: 'failed', profile: status.profile, reason: status.reason };
      case 'started': {
        const { terminal } = status;
        const end = status.endedAt ?? (terminal.running ? this.#clock.now() : terminal.startedAt);
        return {
          state: terminal.running ? 'running' : 'exited',
          profile: status.profile,
          pid: terminal.pid,
          startedAt: terminal.startedAt,
          ...(status.endedAt !== undefined && { endedAt: status.endedAt }),
          runtimeMs: Math.max(0, end - terminal.startedAt),
          outputBytes: terminal.written,
        };
      }
    }
  }

  /** Calls `listener` when a program starts, ends, fails or queues; answers the unsubscribe. */
  onChange(listener: () => void): () => void {
    return this.sessions?.onChange(listener) ?? (() => {});
  }
}
