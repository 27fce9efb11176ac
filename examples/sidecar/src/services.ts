/**
 * Seed 004's two services, defined once and imported by both processes: the manager (the host) and
 * the orchestrator (its sidecar). The orchestrator's hub serves `orchestrate`; the manager's client
 * serves `manager`. Each side calls the other's methods on the one connection that also carries the
 * streams. On the wire these are plain JSON-RPC 2.0 (`orchestrate.route`, `manager.createPane`), as
 * the seed sketches them — examples/python-host/manager.py speaks them with the standard library.
 *
 * No Node imports here: a browser client could import this file too.
 */
import { defineService, method, notification } from '@lockstep/core';
import * as z from 'zod';

/** The kinds of pane the manager can open. */
export const PANE_TYPES = ['terminal', 'editor'] as const;
export type PaneType = (typeof PANE_TYPES)[number];

/** Served by the orchestrator: natural-language commands in, routing decisions out. */
export const orchestrate = defineService('orchestrate', '1.2.0', {
  /**
   * Picks an agent for a command, asks the calling manager to open a pane for it (`manager.createPane`,
   * called back on the same connection), and records the routed task and its pane in
   * `tasks/<project>` and `focus/<project>`. Not idempotent: it opens a pane.
   */
  route: method({
    params: z.object({ command: z.string().trim().min(1).max(500) }),
    result: z.object({
      agent: z.string(),
      paneType: z.enum(PANE_TYPES),
      paneId: z.string(),
      taskId: z.string(),
    }),
  }),
  /** What the orchestrator is doing. Idempotent: a client re-sends it after a reconnect. */
  status: method({
    params: z.undefined(),
    result: z.object({
      routed: z.number().int().nonnegative(),
      thinking: z.number().int().nonnegative(),
      pid: z.number().int(),
      store: z.string(),
    }),
    idempotent: true,
  }),
  /** The orchestrator → the manager: how far the routing of a command has got. */
  progress: notification({
    params: z.object({ command: z.string(), stage: z.enum(['thinking', 'opening', 'routed']), agent: z.string() }),
  }),
});

/** Served by the manager: the IDE's panes. */
export const manager = defineService('manager', '1.4.0', {
  createPane: method({
    params: z.object({ type: z.enum(PANE_TYPES), command: z.string() }),
    result: z.object({ paneId: z.string() }),
  }),
  /** The manager → the orchestrator: a pane's program ended (the orchestrator completes its task). */
  paneClosed: notification({
    params: z.object({ paneId: z.string(), exitCode: z.number().int() }),
  }),
});

/**
 * The application both programs are: each requires the other by name and version range at `hello`
 * (docs/rpc.md, "Versions"). The orchestrator takes managers of 2.x; the manager wants an
 * orchestrator of at least 2.1 (it relies on `route` answering with the pane).
 */
export const APP_NAME = 'orchflow';
export const ORCHESTRATOR_APP = { name: APP_NAME, version: '2.1.0', accepts: '^2.0.0' } as const;
export const MANAGER_APP = { name: APP_NAME, version: '2.0.4', accepts: '>=2.1.0 <3.0.0' } as const;

/** The project whose streams both sides share: `tasks/orchflow`, `focus/orchflow`. */
export const PROJECT = 'orchflow';
