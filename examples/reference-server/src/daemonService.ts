/**
 * Seed 003's daemon protocol as a typed service of the reference server: the web UI's requests
 * (`spawn_session`, `execute_task`, `session_status`, `stop_session`, `daemon_status`) are methods,
 * the daemon's pushes (`stream_chunk`, `tool_call_start`, `tool_call_result`, `task_completed`) are
 * notifications, all on the lockstep/1 connection that already carries the streams and the terminals.
 * Defined once, here, and imported by the server (`daemonImplementation.ts`) and by clients (the
 * dashboard, tests, your programs): browser-safe, no Node imports. See "The daemon service" in
 * docs/reference-server.md and "Seed 003 on typed methods" in docs/rpc.md.
 *
 * | seed 003 (`type`) | here (`daemon.<name>`) |
 * | --- | --- |
 * | `spawn_session` | `spawnSession` → the session, with its program |
 * | `execute_task` | `executeTask`: a session started on a task of the board (an existing one, or one created from `task`) with the task's prompt, as the dashboard's "Start session" |
 * | `session_status` | `sessionStatus` (idempotent) |
 * | `stop_session` | `stopSession` (idempotent) |
 * | `daemon_status` | `daemonStatus` (idempotent) |
 * | `streamResponse: true` | `watch: true` on `spawnSession` / `executeTask`, or `watch` / `unwatch` |
 * | `session_spawned` | the answer of `spawnSession` / `executeTask` |
 * | `stream_chunk` | `output` |
 * | `tool_call_start`, `tool_call_result` | `toolCallStart`, `toolCallResult` |
 * | `task_completed` | `sessionEnded` |
 * | `daemon_status_update` | — (call `daemonStatus`; `GET /api/status` as Server-Sent Events pushes it) |
 * | `ping` | — (lockstep/1 has its own heartbeat) |
 */
import {
  ENTITY_ID_PATTERN,
  SESSION_KINDS,
  SESSION_PROFILE_PATTERN,
  SESSION_STATUSES,
  TASK_LIMITS,
  TASK_PRIORITIES,
  defineService,
  method,
  notification,
} from '@lockstep/core';
import { terminalIdSchema } from '@lockstep/pty/protocol';
import * as z from 'zod';
import { STOP_SIGNALS } from './contract.js';

/** The service's version: bump the minor when adding a method or a notification, the major when changing one. */
export const DAEMON_SERVICE_VERSION = '1.0.0';

/** Any session id of the tasks stream (a session created elsewhere may hold one no terminal can take). */
const sessionIdSchema = z.string().regex(ENTITY_ID_PATTERN, 'session ids are 1–128 characters of A-Z a-z 0-9 _ . : -');
const profileNameSchema = z.string().regex(SESSION_PROFILE_PATTERN, 'a profile name: a letter or digit, then up to 63 of A-Z a-z 0-9 . _ -');
const promptSchema = z.string().max(TASK_LIMITS.text);
const offsetSchema = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const timeSchema = z.number();

/** Where a session's program stands in this server run (`ProcessView` of daemonStatus.ts). */
export const processViewSchema = z.object({
  /** `none`: no program in this server run (it ended before the server started, or the server runs no terminals). */
  state: z.enum(['starting', 'waiting', 'running', 'exited', 'failed', 'none']),
  profile: z.string().optional(),
  pid: z.number().int().optional(),
  startedAt: timeSchema.optional(),
  endedAt: timeSchema.optional(),
  runtimeMs: z.number().optional(),
  /** Bytes the program has written to its terminal. */
  outputBytes: z.number().int().optional(),
  /** Its place in line while it waits for a terminal slot (1 is next). */
  position: z.number().int().optional(),
  /** Why it could not start. */
  reason: z.string().optional(),
});

/** A session as the tasks stream holds it, with its program: `session_status`'s answer. */
export const sessionStatusSchema = z.object({
  id: z.string(),
  name: z.string(),
  kind: z.enum(SESSION_KINDS),
  /** What the server recorded: `starting` → `running` → `exited` (or `failed`). */
  status: z.enum(SESSION_STATUSES),
  profile: z.string().optional(),
  /** Once ended: the program's exit status (128 + the signal's number when a signal ended it). */
  exitCode: z.number().int().optional(),
  signal: z.string().optional(),
  /** `stopped` for a stop; why it failed, for a failure. */
  reason: z.string().optional(),
  process: processViewSchema,
});
export type SessionStatus = z.output<typeof sessionStatusSchema>;

/** A profile a session may run (`GET /api/profiles`'s entries). */
export const profileInfoSchema = z.object({
  name: z.string(),
  description: z.string(),
  acceptsPrompt: z.boolean(),
  prompt: z.enum(['none', 'argv', 'stdin']),
  default: z.boolean(),
});

/** The daemon: seed 003's `daemon_status_update.status`, from `GET /api/status` without the session list. */
export const daemonStatusSchema = z.object({
  status: z.enum(['running', 'closing']),
  serverId: z.string(),
  startedAt: timeSchema,
  uptimeMs: z.number(),
  /** The project whose sessions this server runs (`tasks/<projectId>`). */
  projectId: z.string(),
  /** False when the server runs no terminals: sessions are records only. */
  terminals: z.boolean(),
  /** Programs running now. */
  activeSessions: z.number().int(),
  /** Sessions waiting for a terminal slot. */
  queuedSessions: z.number().int(),
  /** Terminal slots: at most this many programs run at once. */
  maxTerminals: z.number().int(),
  /** Since the server started: programs started, ended, failed to start. */
  totals: z.object({ started: z.number().int(), exited: z.number().int(), failed: z.number().int() }),
  profiles: z.array(profileInfoSchema),
  /** The profile of a session that names none (null without terminals). */
  defaultProfile: z.string().nullable(),
});
export type DaemonStatusResult = z.output<typeof daemonStatusSchema>;

const watchFlag = z.boolean().optional();

export const spawnSessionParamsSchema = z.strictObject({
  /** The new session's id; default: one derived from the call (`sess_…`). It names its terminal too. */
  sessionId: terminalIdSchema.optional(),
  name: z.string().trim().min(1).max(TASK_LIMITS.sessionName).optional(),
  /** What it runs (seed: `sessionType`); default: the server's default profile. */
  profile: profileNameSchema.optional(),
  /** Given to a profile that takes one (seed: `task.description`); refused by one that takes none. */
  prompt: promptSchema.optional(),
  /** Also watch it from its first byte: `output`, tool calls and `sessionEnded` follow the answer (seed: `streamResponse`). */
  watch: watchFlag,
});

/** A task created by `executeTask` (seed: `execute_task.task`, there a text). */
const newTaskSchema = z.strictObject({
  title: z.string().trim().min(1).max(TASK_LIMITS.title),
  description: z.string().max(TASK_LIMITS.text).optional(),
  prompt: promptSchema.optional(),
  priority: z.enum(TASK_PRIORITIES).optional(),
});

export const executeTaskParamsSchema = z
  .strictObject({
    /** A task of the board to start a session on… */
    taskId: sessionIdSchema.optional(),
    /** …or one to create first. Exactly one of the two. */
    task: newTaskSchema.optional(),
    sessionId: terminalIdSchema.optional(),
    profile: profileNameSchema.optional(),
    watch: watchFlag,
  })
  .refine((params) => (params.taskId === undefined) !== (params.task === undefined), { message: 'give exactly one of taskId and task', path: ['taskId'] });

export const outputNotificationSchema = z.object({
  sessionId: z.string(),
  /** The byte offset of `chunk`'s first byte in the program's output. */
  offset: offsetSchema,
  /** Just after its last byte: `watch({sessionId, since: end})` resumes right after this chunk. */
  end: offsetSchema,
  /** The output as text (UTF-8, never split inside a character), as the terminal shows it: `\r\n` line ends, colours. */
  chunk: z.string(),
  /** Output before `offset` was skipped: the watcher fell behind what the scrollback holds. */
  truncated: z.literal(true).optional(),
});

const wireErrorSchema = z.object({ code: z.number().int(), message: z.string(), data: z.unknown().optional() });

/**
 * The `daemon` service. Every method is authorized by the hub's `authorize` hook as `call` with its
 * wire name (`daemon.spawnSession`), then acts on `tasks/<project>` as the caller: reads need `read`,
 * spawns and stops `write`, and watching a session's output `read` on `terminal/<id>` too. A session
 * the project does not hold is `COMMAND_REJECTED` with `reason: "session.notFound"`; params that do
 * not fit are `INVALID_PARAMS` (with zod's issues, or the profile's `reason`).
 */
export const daemonService = defineService('daemon', DAEMON_SERVICE_VERSION, {
  /** `spawn_session`: a new session running a profile (with its prompt). Resolves once the session is recorded; its program starts right after (or waits for a slot). */
  spawnSession: method({ params: spawnSessionParamsSchema, result: sessionStatusSchema }),
  /** `execute_task`: "Start session" on a task: a session named after it, running `profile` with the task's prompt, linked to it; a pending task goes `in_progress`. */
  executeTask: method({
    params: executeTaskParamsSchema,
    result: z.object({ taskId: z.string(), sessionId: z.string(), session: sessionStatusSchema }),
  }),
  /** `session_status`: the session with its program. */
  sessionStatus: method({ params: z.strictObject({ sessionId: sessionIdSchema }), result: sessionStatusSchema, idempotent: true }),
  /** `stop_session`: ends the program (`signal`, default SIGHUP; SIGKILL after a grace period); resolves once the exit is recorded. `stopped` false: it had already ended. */
  stopSession: method({
    params: z.strictObject({ sessionId: sessionIdSchema, signal: z.enum(STOP_SIGNALS).optional() }),
    result: z.object({ stopped: z.boolean(), session: sessionStatusSchema }),
    idempotent: true,
  }),
  /** `daemon_status`: uptime, programs running and queued, terminal slots, totals, profiles. */
  daemonStatus: method({ params: z.undefined(), result: daemonStatusSchema, idempotent: true }),
  /**
   * Sends this connection the session's `output` from byte `since` (default 0: from the oldest byte
   * the scrollback holds), its tool calls, and `sessionEnded` once its end is recorded — then the
   * watch ends. Watching it again restarts from the new `since`. A session with no program yet (just
   * spawned, or waiting for a slot) is watched from its program's first byte.
   */
  watch: method({
    params: z.strictObject({ sessionId: sessionIdSchema, since: offsetSchema.optional() }),
    result: z.object({ sessionId: z.string(), offset: offsetSchema, session: sessionStatusSchema }),
  }),
  /** Stops watching (`watching`: whether it was). */
  unwatch: method({ params: z.strictObject({ sessionId: sessionIdSchema }), result: z.object({ watching: z.boolean() }), idempotent: true }),

  /** `stream_chunk`: the watched session's output. */
  output: notification({ params: outputNotificationSchema }),
  /** `tool_call_start`: a `[tool_call_start] <tool> <json>` line of the output. */
  toolCallStart: notification({ params: z.object({ sessionId: z.string(), toolName: z.string(), input: z.unknown() }) }),
  /** `tool_call_result`: a `[tool_call_result] <tool> <json>` line. */
  toolCallResult: notification({ params: z.object({ sessionId: z.string(), toolName: z.string(), result: z.unknown() }) }),
  /** `task_completed`: the session ended (after its last `output`) or was deleted; the watch is over. */
  sessionEnded: notification({
    params: z.object({
      sessionId: z.string(),
      status: z.enum(['exited', 'failed', 'deleted']),
      exitCode: z.number().int().optional(),
      signal: z.string().optional(),
      reason: z.string().optional(),
    }),
  }),
  /** The watch ended because the caller may no longer read the session (a grant revoked, `hub.reauthorize`): `error` is the refusal. */
  unwatched: notification({ params: z.object({ sessionId: z.string(), error: wireErrorSchema }) }),
});
export type DaemonService = typeof daemonService;
