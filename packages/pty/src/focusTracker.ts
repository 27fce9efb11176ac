import { randomUUID } from 'node:crypto';
import { createMemoryLink, jsonCodec, LockstepError, protocol, type Clock, type FocusState, type MemoryLink, type TimerHandle } from '@lockstep/core';
import type { Hub, Identity } from '@lockstep/server';

/** The identity the focus watcher's in-process connection presents to the hub's `authorize` hook. */
export const FOCUS_WATCHER_IDENTITY: Identity = { id: 'lockstep-pty', internal: true };

const RECONNECT_MS = 1_000;

interface ProjectFocus {
  refs: number;
  /** Undefined until known, or when the hub refuses to tell (then everything counts as focused). */
  focused: ReadonlySet<string> | undefined;
  version: number;
  loaded: Promise<void>;
}

interface Pending {
  resolve(result: unknown): void;
  reject(error: LockstepError): void;
}

export interface FocusTrackerOptions {
  identity?: Identity;
  clock: Clock;
  /** The focus set of a project changed. */
  onChange(project: string): void;
  onError(error: unknown, context: string): void;
}

/**
 * Keeps the focus sets of the projects that have viewers current, pushed by the hub itself: one
 * in-process lockstep/1 connection (a memory link) subscribes to `focus/<project>`, and every
 * `events` notification of it re-reads the stream's state with `hub.read`. So a focus change made by
 * any client reaches terminal delivery as soon as the hub commits it, without polling.
 */
export class FocusTracker {
  readonly #hub: () => Hub;
  readonly #options: FocusTrackerOptions;
  readonly #projects = new Map<string, ProjectFocus>();
  readonly #pending = new Map<number, Pending>();
  #link: MemoryLink | undefined;
  #nextId = 0;
  #reconnect: TimerHandle | undefined;
  #closed = false;

  constructor(hub: () => Hub, options: FocusTrackerOptions) {
    this.#hub = hub;
    this.#options = options;
  }

  /** Whether `sessionId` is in the focus set of `project` (true while unknown: focus only ever throttles). */
  isFocused(project: string, sessionId: string): boolean {
    const focused = this.#projects.get(project)?.focused;
    return focused === undefined || focused.has(sessionId);
  }

  /** Follows `project`'s focus set until the returned function is called; resolves once it is known. */
  async watch(project: string): Promise<() => void> {
    let entry = this.#projects.get(project);
    if (!entry) {
      const created: ProjectFocus = { refs: 0, focused: undefined, version: -1, loaded: Promise.resolve() };
      entry = created;
      this.#projects.set(project, created);
      if (this.#served()) {
        created.loaded = this.#refresh(project);
        this.#subscribe(project);
      }
    }
    entry.refs++;
    const watched = entry;
    let released = false;
    await watched.loaded;
    return () => {
      if (released) return;
      released = true;
      if (--watched.refs > 0 || this.#projects.get(project) !== watched) return;
      this.#projects.delete(project);
      if (this.#link) void this.#request('unsubscribe', { stream: streamOf(project) }).catch(() => {});
    };
  }

  close(): void {
    this.#closed = true;
    if (this.#reconnect !== undefined) this.#options.clock.clearTimeout(this.#reconnect);
    this.#link?.client.close('terminal extension closing');
    this.#link = undefined;
    this.#projects.clear();
  }

  #served(): boolean {
    return this.#hub().domainNames.includes('focus');
  }

  /** Re-reads a project's focus set; tells `onChange` when it moved. */
  async #refresh(project: string): Promise<void> {
    try {
      const { state, version } = await this.#hub().read(streamOf(project));
      const entry = this.#projects.get(project);
      if (!entry || version <= entry.version) return;
      const before = entry.focused;
      const focused = new Set((state as FocusState).focused);
      entry.focused = focused;
      entry.version = version;
      if (!before || before.size !== focused.size || [...focused].some((id) => !before.has(id))) this.#options.onChange(project);
    } catch (error) {
      this.#options.onError(error, `reading ${streamOf(project)}`);
    }
  }

  #subscribe(project: string): void {
    this.#request('subscribe', { stream: streamOf(project) }).then(
      () => this.#refresh(project),
      (error: unknown) => {
        if (!this.#closed) this.#options.onError(error, `following ${streamOf(project)}`);
      },
    );
  }

  #connection(): MemoryLink {
    if (this.#link) return this.#link;
    const link = createMemoryLink({ clock: this.#options.clock });
    this.#link = link;
    this.#hub().accept(link.server, { codec: jsonCodec, identity: this.#options.identity ?? FOCUS_WATCHER_IDENTITY });
    link.client.frames.subscribe((frame) => this.#onFrame(frame));
    link.client.state.subscribe((state) => {
      if (state.status === 'closed') this.#onClosed(link);
    });
    this.#send(link, 'hello', { protocol: 1, clientId: `lockstep-pty-${randomUUID()}` }).catch((error: unknown) =>
      this.#options.onError(error, 'focus watcher hello'),
    );
    return link;
  }

  #request(method: string, params: unknown): Promise<unknown> {
    if (this.#closed) return Promise.reject(new LockstepError('UNAVAILABLE', 'closed'));
    return this.#send(this.#connection(), method, params);
  }

  #send(link: MemoryLink, method: string, params: unknown): Promise<unknown> {
    const id = ++this.#nextId;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      link.client.send(jsonCodec.encode({ jsonrpc: '2.0', id, method, params }));
    });
  }

  #onFrame(frame: unknown): void {
    let message: Record<string, unknown>;
    try {
      message = jsonCodec.decode(frame as string) as Record<string, unknown>;
    } catch (error) {
      this.#options.onError(error, 'focus watcher frame');
      return;
    }
    if (typeof message['id'] === 'number') {
      const pending = this.#pending.get(message['id']);
      this.#pending.delete(message['id']);
      if (!pending) return;
      const error = message['error'];
      if (error) pending.reject(LockstepError.fromWire(error as { code: number; message: string }));
      else pending.resolve(message['result']);
      return;
    }
    const params = message['params'] as { stream?: unknown } | undefined;
    const project = typeof params?.stream === 'string' ? projectOf(params.stream) : undefined;
    if (project === undefined || !this.#projects.has(project)) return;
    if (message['method'] === protocol.Notifications.events) void this.#refresh(project);
    else if (message['method'] === protocol.Notifications.resync) this.#subscribe(project);
    else if (message['method'] === protocol.Notifications.unsubscribed) this.#refused(project, message['params']);
  }

  /** The hub ended the subscription (the hook no longer lets the watcher read it): focus is unknown again. */
  #refused(project: string, params: unknown): void {
    const parsed = protocol.unsubscribedParamsSchema.safeParse(params);
    const error = parsed.success ? LockstepError.fromWire(parsed.data.error) : new LockstepError('FORBIDDEN', 'the hub ended the subscription');
    this.#options.onError(error, `following ${streamOf(project)}`);
    const entry = this.#projects.get(project);
    if (!entry || entry.focused === undefined) return;
    entry.focused = undefined;
    this.#options.onChange(project);
  }

  #onClosed(link: MemoryLink): void {
    if (this.#link !== link) return;
    this.#link = undefined;
    for (const pending of this.#pending.values()) pending.reject(new LockstepError('UNAVAILABLE', 'focus watcher connection closed'));
    this.#pending.clear();
    if (this.#closed || this.#projects.size === 0) return;
    // Follow again (the hub may be restarting its connections); what changed meanwhile is re-read.
    this.#reconnect = this.#options.clock.setTimeout(() => {
      this.#reconnect = undefined;
      if (this.#closed) return;
      for (const project of this.#projects.keys()) {
        this.#subscribe(project);
      }
    }, RECONNECT_MS);
  }
}

function streamOf(project: string): string {
  return `focus/${project}`;
}

function projectOf(stream: string): string | undefined {
  return stream.startsWith('focus/') ? stream.slice('focus/'.length) : undefined;
}
