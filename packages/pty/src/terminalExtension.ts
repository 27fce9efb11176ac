import { LockstepError, systemClock, type ParamsOutput } from '@lockstep/core';
import type { Hub, Identity, Peer, ServeOptions, ServiceContext, ServiceImplementation } from '@lockstep/server';
import { Attachment, type AttachmentInfo } from './attachment.js';
import { resolveDeliveryPolicy, type DeliveryMode, type DeliveryPolicy } from './deliveryPolicy.js';
import { FocusTracker } from './focusTracker.js';
import { terminalResource, terminalService, type AttachResult, type DetachedNotification, type TerminalService } from './protocol.js';
import { DEFAULT_CHUNK_BYTES, type Terminal } from './terminal.js';
import { TerminalManager, WAITING_FOR_TERMINAL_SLOT, type TerminalManagerOptions } from './terminalManager.js';

export interface TerminalExtensionOptions extends Omit<TerminalManagerOptions, 'hub'> {
  /**
   * The hub the extension is installed in. A function, because the hub is constructed with the
   * extension: `createTerminalExtension({ hub: () => hub })`, then `const hub = new Hub({ services: [ext] })`.
   */
  hub: () => Hub;
  /** Who gets output how: focused sessions live, the others throttled by default. */
  deliveryPolicy?: DeliveryPolicy;
  /**
   * The identity of the extension's in-process connection that follows `focus/<project>` streams. A
   * custom `authorize` hook must let it read them. Default `{ id: 'lockstep-pty', internal: true }`.
   */
  focusIdentity?: Identity;
}

/**
 * The terminal extension: the terminal service's implementation — install it in a hub
 * (`new Hub({ services: [extension] })`) — and the terminals it serves (spawn them through `terminals`).
 */
export interface TerminalExtension extends ServiceImplementation<TerminalService> {
  /** Spawns, lists and removes the terminals the extension serves. */
  readonly terminals: TerminalManager;
  /** Every attachment (viewer) right now: cursors, modes, skipped bytes, the connection's unsent bytes. */
  attachments(): AttachmentInfo[];
}

type Params<K extends 'attach' | 'detach' | 'input' | 'resize'> = ParamsOutput<TerminalService[K]>;

/**
 * Terminals over lockstep/1: the terminal service (`terminalService` of `@lockstep/pty/protocol`) served
 * by the hub — `terminal.attach`, `terminal.detach`, `terminal.input`, `terminal.resize`; notifications
 * `terminal.output`, `terminal.exit`, `terminal.resized`, `terminal.detached`. See docs/terminals.md.
 * Params are validated by the service's schemas before a handler runs; the handler then authorizes the
 * terminal it acts on (the service's own rule lets every greeted caller reach the handlers).
 *
 * Authorization: each terminal is the resource `terminal/<id>` for the hub's `authorize` hook —
 * `read` to attach, `write` to send input or resize. Unknown terminals are `UNKNOWN_STREAM`
 * (checked after authorization, so ids cannot be probed); one whose spawn waits for a slot is
 * `UNKNOWN_STREAM` with `data.reason` `waitingForTerminalSlot` and its `position` in line. When the
 * application calls `hub.reauthorize`, every attachment of the connections concerned is authorized
 * again, and a refused one is detached with a `terminal.detached` notification `{terminalId, error}`.
 */
export function createTerminalExtension(options: TerminalExtensionOptions): TerminalExtension {
  const clock = options.clock ?? systemClock;
  const report = options.onError ?? ((error: unknown, context: string) => console.error(`[lockstep pty] ${context}:`, error));
  const policy = resolveDeliveryPolicy(options.deliveryPolicy);
  const chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  const terminals = new TerminalManager({ ...options, hub: options.hub, clock, onError: report });
  /** sessionId → terminalId → attachment. */
  const bySession = new Map<string, Map<string, Attachment>>();
  /** Releases the focus watch each attachment holds. */
  const releases = new Map<Attachment, () => void>();
  /**
   * Per session, how many times its grants were re-checked (`onReauthorize`): an attach authorized
   * before the last re-check may have been answered with a grant since revoked, and asks again.
   */
  const rechecks = new WeakMap<Peer, number>();
  const rechecksOf = (session: Peer) => rechecks.get(session) ?? 0;
  const focusTrackerOptions = {
    clock,
    onChange: (project: string) => {
      for (const attachments of bySession.values()) {
        for (const attachment of attachments.values()) {
          const terminal = attachment.terminal as Terminal;
          if (terminal.project === project) attachment.setMode(modeFor(terminal));
        }
      }
    },
    onError: report,
    ...(options.focusIdentity !== undefined && { identity: options.focusIdentity }),
  };
  const focus = new FocusTracker(options.hub, focusTrackerOptions);

  function modeFor(terminal: Terminal): DeliveryMode {
    return terminal.project === undefined || focus.isFocused(terminal.project, terminal.id) ? policy.focused : policy.unfocused;
  }

  function terminalFor(terminalId: string): Terminal {
    const terminal = terminals.get(terminalId);
    if (terminal) return terminal;
    // Not there yet: say why when its spawn waits for a slot (a client retries UNKNOWN_STREAM anyway).
    const waiting = terminals.waitingFor(terminalId);
    if (waiting) {
      const { maxTerminals } = terminals.limits;
      throw new LockstepError(
        'UNKNOWN_STREAM',
        `terminal ${terminalId} is waiting for a free slot (number ${waiting.position} in line; at most ${maxTerminals} terminals)`,
        {
          terminalId,
          reason: WAITING_FOR_TERMINAL_SLOT,
          position: waiting.position,
          maxTerminals,
        },
      );
    }
    throw new LockstepError('UNKNOWN_STREAM', `no terminal ${terminalId}`, { terminalId });
  }

  function forget(attachment: Attachment): void {
    const attachments = bySession.get(attachment.session.sessionId);
    if (attachments?.get(attachment.terminal.id) === attachment) {
      attachments.delete(attachment.terminal.id);
      if (attachments.size === 0) bySession.delete(attachment.session.sessionId);
    }
    releases.get(attachment)?.();
    releases.delete(attachment);
  }

  async function attach({ terminalId, since = 0 }: Params<'attach'>, { peer: session }: ServiceContext): Promise<AttachResult> {
    let checked = rechecksOf(session);
    await session.authorize(terminalResource(terminalId), 'read');
    const terminal = terminalFor(terminalId);
    if (since > terminal.written) {
      throw new LockstepError('INVALID_PARAMS', `offset ${since} is beyond the output of terminal ${terminalId} (${terminal.written} bytes)`, {
        reason: 'sinceAhead',
        end: terminal.written,
        runId: terminal.runId,
      });
    }
    const release = terminal.project === undefined ? () => {} : await focus.watch(terminal.project);
    try {
      // Grants were re-checked while this attach was being authorized: its answer may be stale.
      while (checked !== rechecksOf(session)) {
        checked = rechecksOf(session);
        await session.authorize(terminalResource(terminalId), 'read');
      }
    } catch (error) {
      release();
      throw error;
    }
    if (session.closed || terminals.get(terminalId) !== terminal) {
      release();
      throw new LockstepError('UNAVAILABLE', 'the connection or the terminal went away');
    }
    const offset = Math.max(since, terminal.start);
    const settings = { chunkBytes, highWaterBytes: policy.highWaterBytes, drainCheckMs: policy.drainCheckMs, maxLagBytes: policy.maxLagBytes, clock };
    // Attaching again restarts the attachment from the new offset, as subscribing again does.
    bySession.get(session.sessionId)?.get(terminalId)?.close();
    const attachment = new Attachment(terminal, session, offset, modeFor(terminal), settings, forget);
    let attachments = bySession.get(session.sessionId);
    if (!attachments) bySession.set(session.sessionId, (attachments = new Map<string, Attachment>()));
    attachments.set(terminalId, attachment);
    releases.set(attachment, release);
    // The answer goes out in this turn; output follows from the next one, so it never overtakes it.
    setImmediate(() => attachment.start());
    const result: AttachResult = { terminalId, runId: terminal.runId, offset, end: terminal.end, cols: terminal.cols, rows: terminal.rows };
    if (offset > since) result.truncated = true;
    if (terminal.exit) result.exited = true;
    return result;
  }

  /** Authorizes every attachment of the session again; a refused one is detached, and told so. */
  async function reauthorize(session: Peer): Promise<void> {
    rechecks.set(session, rechecksOf(session) + 1);
    const attachments = [...(bySession.get(session.sessionId)?.values() ?? [])];
    await Promise.all(
      attachments.map(async (attachment) => {
        const terminalId = attachment.terminal.id;
        try {
          await session.authorize(terminalResource(terminalId), 'read');
        } catch (error) {
          // Detached meanwhile, or attached again (a new attachment, authorized on its own).
          if (attachment.closed) return;
          attachment.close();
          const detached: DetachedNotification = { terminalId, error: LockstepError.from(error).toJSON() };
          session.notify(terminalService.detached, detached);
        }
      }),
    );
  }

  function detach({ terminalId }: Params<'detach'>, { peer: session }: ServiceContext): Record<string, never> {
    bySession.get(session.sessionId)?.get(terminalId)?.close();
    return {};
  }

  async function input({ terminalId, data, encoding }: Params<'input'>, { peer: session }: ServiceContext): Promise<Record<string, never>> {
    await session.authorize(terminalResource(terminalId), 'write');
    terminalFor(terminalId).write(encoding === 'base64' ? Buffer.from(data, 'base64') : data);
    return {};
  }

  async function resize({ terminalId, cols, rows }: Params<'resize'>, { peer: session }: ServiceContext): Promise<{ cols: number; rows: number }> {
    await session.authorize(terminalResource(terminalId), 'write');
    const terminal = terminalFor(terminalId);
    if (terminal.exit) throw new LockstepError('COMMAND_REJECTED', `terminal ${terminalId} has exited`, { reason: 'terminal.exited', terminalId });
    terminal.resize(cols, rows);
    return { cols: terminal.cols, rows: terminal.rows };
  }

  const serveOptions: ServeOptions = {
    // Every caller may call: each handler authorizes the terminal it acts on (`terminal/<id>`).
    authorize: () => true,
    onPeerClosed(session) {
      for (const attachment of [...(bySession.get(session.sessionId)?.values() ?? [])]) attachment.close();
    },
    onReauthorize: reauthorize,
    async close() {
      focus.close();
      for (const attachments of [...bySession.values()]) for (const attachment of [...attachments.values()]) attachment.close();
      await terminals.close();
    },
  };
  return {
    service: terminalService,
    handlers: { attach, detach, input, resize },
    options: serveOptions,
    terminals,
    attachments() {
      return [...bySession.values()].flatMap((attachments) => [...attachments.values()].map((attachment) => attachment.info()));
    },
  };
}
