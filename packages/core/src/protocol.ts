import * as z from 'zod';
import { COMMAND_ID_PATTERN, commandIdSchema, commandSchema, eventSchema, parseStreamName, streamNameSchema, versionSchema, type Event } from './envelope.js';
import type { WireError } from './errors.js';
import { isRange, isVersion as isSemver } from './semver.js';
import { SERVICE_NAME_PATTERN } from './service.js';

/** The protocol version this release speaks. */
export const PROTOCOL_VERSION = 1;

// ---------------------------------------------------------------------------------------------
// JSON-RPC 2.0 envelopes
// ---------------------------------------------------------------------------------------------

export const requestIdSchema = z.union([z.string().max(128), z.number().int().safe()]);
export type RequestId = z.infer<typeof requestIdSchema>;

export const wireErrorSchema = z.object({ code: z.number().int(), message: z.string(), data: z.unknown().optional() });

/** Any JSON-RPC message; which kind it is depends on which members are present. */
export const messageSchema = z.object({
  jsonrpc: z.literal('2.0'),
  id: requestIdSchema.nullable().optional(),
  method: z.string().max(128).optional(),
  params: z.unknown().optional(),
  result: z.unknown().optional(),
  error: wireErrorSchema.optional(),
});

export interface RequestMessage {
  jsonrpc: '2.0';
  id: RequestId;
  method: string;
  params?: unknown;
}
export interface NotificationMessage {
  jsonrpc: '2.0';
  method: string;
  params?: unknown;
}
export interface SuccessResponse {
  jsonrpc: '2.0';
  id: RequestId;
  result: unknown;
}
export interface ErrorResponse {
  jsonrpc: '2.0';
  id: RequestId | null;
  error: WireError;
}
export type ResponseMessage = SuccessResponse | ErrorResponse;
export type Message = RequestMessage | NotificationMessage | ResponseMessage;

// ---------------------------------------------------------------------------------------------
// lockstep/1 methods: client → hub requests
// ---------------------------------------------------------------------------------------------

/** A semver version as `hello` carries them (`1.2.3`, at most 64 characters). */
export const semverSchema = z.string().max(64).refine(isSemver, { message: 'not a semver version (1.2.3)' });

/** A service one side serves, as announced in `hello`: its name and version. */
export const serviceInfoSchema = z.object({
  name: z.string().regex(SERVICE_NAME_PATTERN, 'service names are a lowercase letter, then up to 62 of A-Z a-z 0-9 _ -'),
  version: semverSchema,
});
export type ServiceInfo = z.infer<typeof serviceInfoSchema>;

/** The most services one side may announce. */
export const MAX_ANNOUNCED_SERVICES = 256;

/** The application on one side of a connection, as `hello` carries it. */
export const appInfoSchema = z.object({ name: z.string().min(1).max(128), version: semverSchema });
export type AppInfo = z.infer<typeof appInfoSchema>;

/** An application and the versions of its peer it accepts (a semver range; none: any version of that name). */
export const appRequirementSchema = appInfoSchema.extend({
  accepts: z.string().max(256).refine(isRange, { message: 'not a semver range (^1.2.0, >=1.0.0 <3.0.0, …)' }).optional(),
});
export type AppRequirement = z.infer<typeof appRequirementSchema>;

export const helloParamsSchema = z.object({
  protocol: z.number().int(),
  clientId: commandIdSchema.optional(),
  token: z.string().max(8192).optional(),
  capabilities: z.record(z.string().max(64), z.unknown()).optional(),
  /** The services the client serves: the hub may call their methods on this connection. */
  services: z.array(serviceInfoSchema).max(MAX_ANNOUNCED_SERVICES).optional(),
  /** The client's application, checked against the hub's `app.accepts`. */
  app: appInfoSchema.optional(),
});
export type HelloParams = z.infer<typeof helloParamsSchema>;

export const helloResultSchema = z.object({
  protocol: z.number().int(),
  serverId: z.string(),
  sessionId: z.string(),
  /** Identity of the hub's log: when it changes, a client's cached state belongs to another log. */
  epoch: z.string(),
  capabilities: z.record(z.string(), z.unknown()),
  heartbeatMs: z.number().int().nonnegative(),
  domains: z.array(z.string()),
  /** The services the hub serves (absent: none). */
  services: z.array(serviceInfoSchema).optional(),
  /** The hub's application, when it names one. */
  app: appInfoSchema.optional(),
});
export type HelloResult = z.infer<typeof helloResultSchema>;

export const subscribeParamsSchema = z.object({
  stream: streamNameSchema,
  since: versionSchema.optional(),
});
export type SubscribeParams = z.infer<typeof subscribeParamsSchema>;

export const subscribeResultSchema = z.object({
  stream: z.string(),
  /** The version the client is at once it has applied this answer. */
  version: versionSchema,
  /** The stream's head when the hub answered; further events up to it follow as notifications. */
  head: versionSchema,
  /** The oldest version the hub can still replay from: a `since` below `oldestRetained - 1` gets a snapshot. */
  oldestRetained: versionSchema,
  events: z.array(eventSchema).optional(),
  snapshot: z.unknown().optional(),
  /**
   * The snapshot is too large for one frame: it follows in this many `snapshot` notifications (pages
   * of its JSON text), before any event of the stream. Only to a client whose hello said `snapshotPages`.
   */
  snapshotPages: z.int().min(1).optional(),
});
export type SubscribeResult = Omit<z.infer<typeof subscribeResultSchema>, 'events'> & { events?: Event[] };

export const unsubscribeParamsSchema = z.object({ stream: streamNameSchema });
export const unsubscribeResultSchema = z.object({});

export const commandParamsSchema = commandSchema.extend({
  /**
   * Answer this command even when the `eventAcks` capability would let its events stand for the
   * answer: for an id that another client may also send (an idempotency key shared between
   * processes), whose events this client cannot tell from the other's.
   */
  explicitAck: z.literal(true).optional(),
});
export type CommandParams = z.infer<typeof commandParamsSchema>;

export const commandResultSchema = z.object({
  id: z.string(),
  stream: z.string(),
  /** The stream version after the command's events (unchanged when it produced none). */
  version: versionSchema,
  duplicate: z.boolean().optional(),
});
export type CommandResult = z.infer<typeof commandResultSchema>;

export const pingParamsSchema = z.object({}).loose().optional();
export const pingResultSchema = z.object({ time: z.number() });

// ---------------------------------------------------------------------------------------------
// hub → client notifications
// ---------------------------------------------------------------------------------------------

export const eventsParamsSchema = z.object({
  stream: z.string(),
  events: z.array(eventSchema).min(1),
  /**
   * A page of a catch-up (a subscription reading its way to the head), where a command's events
   * may be split between pages: it stands for no ack. Without it, the notification is the live
   * broadcast of one committed batch, with every event of each command in it, which with
   * `eventAcks` stands for the acks of the client's commands whose events it carries.
   */
  catchUp: z.literal(true).optional(),
});
export type EventsParams = { stream: string; events: Event[]; catchUp?: true };

/**
 * One page of a snapshot too large for a frame (`snapshotPages` in the subscribe answer): `data` is a
 * piece of the JSON text of the state at `version`; the pages, joined in order, are that text.
 */
export const snapshotParamsSchema = z.object({
  stream: z.string(),
  version: versionSchema,
  /** From 0. */
  page: z.int().min(0),
  pages: z.int().min(1),
  data: z.string(),
});
export type SnapshotParams = z.infer<typeof snapshotParamsSchema>;

/** Sent by the hub when it drops a subscription (slow consumer, stream reset); the client resubscribes. */
export const resyncParamsSchema = z.object({ stream: z.string(), reason: z.string() });

export const Methods = {
  hello: 'hello',
  subscribe: 'subscribe',
  unsubscribe: 'unsubscribe',
  command: 'command',
  ping: 'ping',
} as const;

/** Sent by the hub right before it closes a connection because it is shutting down; the client reconnects. */
export const shutdownParamsSchema = z.object({ reason: z.string() });

/**
 * Sent by the hub when it ends a subscription for good: the connection may no longer read the stream
 * (its grants were revoked, see `Hub.reauthorize`). No more events of the stream follow, and the client
 * does not resubscribe by itself; `error` says why, as an error answer would (`FORBIDDEN`).
 */
export const unsubscribedParamsSchema = z.object({ stream: z.string(), error: wireErrorSchema });
export type UnsubscribedParams = z.infer<typeof unsubscribedParamsSchema>;

export const Notifications = {
  events: 'events',
  snapshot: 'snapshot',
  resync: 'resync',
  shutdown: 'shutdown',
  unsubscribed: 'unsubscribed',
} as const;

// ---------------------------------------------------------------------------------------------
// Both directions
// ---------------------------------------------------------------------------------------------

/**
 * `$/cancelRequest {id}` (as in LSP), either way: the sender no longer wants the answer to its request
 * `id`. The receiver aborts the handler's `signal`; the request is still answered (CANCELLED, or what
 * the handler had), and the sender ignores that answer. Unknown ids are ignored.
 */
export const CANCEL_REQUEST = '$/cancelRequest';
export const cancelRequestParamsSchema = z.object({ id: requestIdSchema });

// ---------------------------------------------------------------------------------------------
// Fast paths for the messages of the hot path
// ---------------------------------------------------------------------------------------------

/** What `safeParse` answers. */
export type Parsed<T> = { success: true; data: T } | { success: false; error: z.ZodError };

/**
 * `schema.safeParse`, first trying `exact`: a check that accepts only values the schema accepts *and*
 * would give back unchanged (no unknown key to strip, nothing to transform), which are then returned
 * as they are instead of copied. Everything else — every invalid value included — goes to the schema,
 * which stays the authority on what is valid and on the error. A hub or client parses several such
 * envelopes per event; building a copy of each was a fifth of the garbage they made.
 * `protocol.fast.test.ts` checks the two agree on valid and fuzzed messages.
 */
function fastPath<T>(schema: z.ZodType<T>, exact: (value: unknown) => boolean): (value: unknown) => Parsed<T> {
  return (value) => (exact(value) ? { success: true, data: value as T } : schema.safeParse(value));
}

const MESSAGE_KEYS = new Set(['jsonrpc', 'id', 'method', 'params', 'result', 'error']);
const WIRE_ERROR_KEYS = new Set(['code', 'message', 'data']);
const EVENTS_PARAMS_KEYS = new Set(['stream', 'events', 'catchUp']);
const EVENT_KEYS = new Set(['version', 'type', 'data', 'time', 'commandId']);
const COMMAND_RESULT_KEYS = new Set(['id', 'stream', 'version', 'duplicate']);
const COMMAND_KEYS = new Set(['id', 'stream', 'type', 'payload', 'expectedVersion', 'explicitAck']);

/** A plain object (as JSON.parse makes them) whose keys, own and inherited, are all in `keys`. */
function record(value: unknown, keys: ReadonlySet<string>): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Object.getPrototypeOf(value) !== Object.prototype) return false;
  for (const key in value) if (!keys.has(key)) return false;
  return true;
}

const isVersion = (value: unknown): boolean => Number.isSafeInteger(value) && (value as number) >= 0;
const isBoundedString = (value: unknown, min: number, max: number): boolean => typeof value === 'string' && value.length >= min && value.length <= max;
const isCommandId = (value: unknown): boolean => typeof value === 'string' && COMMAND_ID_PATTERN.test(value);

function exactMessage(value: unknown): boolean {
  if (!record(value, MESSAGE_KEYS) || value['jsonrpc'] !== '2.0') return false;
  const { id, method, error } = value;
  if (!(id === undefined || id === null || isBoundedString(id, 0, 128) || Number.isSafeInteger(id))) return false;
  if (!(method === undefined || isBoundedString(method, 0, 128))) return false;
  return error === undefined || (record(error, WIRE_ERROR_KEYS) && Number.isSafeInteger(error['code']) && typeof error['message'] === 'string');
}

function exactEvent(value: unknown): boolean {
  if (!record(value, EVENT_KEYS)) return false;
  const { version, type, time, commandId } = value;
  return (
    isVersion(version) &&
    (version as number) >= 1 &&
    isBoundedString(type, 1, 128) &&
    'data' in value &&
    Number.isFinite(time) &&
    (commandId === undefined || isCommandId(commandId))
  );
}

function exactEventsParams(value: unknown): boolean {
  if (!record(value, EVENTS_PARAMS_KEYS) || typeof value['stream'] !== 'string') return false;
  if (!(value['catchUp'] === undefined || value['catchUp'] === true)) return false;
  const events = value['events'];
  if (!Array.isArray(events) || events.length === 0) return false;
  for (const event of events) if (!exactEvent(event)) return false;
  return true;
}

function exactCommandResult(value: unknown): boolean {
  if (!record(value, COMMAND_RESULT_KEYS)) return false;
  const { id, stream, version, duplicate } = value;
  return typeof id === 'string' && typeof stream === 'string' && isVersion(version) && (duplicate === undefined || typeof duplicate === 'boolean');
}

function exactCommand(value: unknown): boolean {
  if (!record(value, COMMAND_KEYS)) return false;
  const { id, stream, type, expectedVersion, explicitAck } = value;
  return (
    (explicitAck === undefined || explicitAck === true) &&
    isCommandId(id) &&
    typeof stream === 'string' &&
    parseStreamName(stream) !== undefined &&
    isBoundedString(type, 1, 128) &&
    'payload' in value &&
    (expectedVersion === undefined || isVersion(expectedVersion))
  );
}

/** `messageSchema.safeParse`, without a copy for a well-formed message. */
export const parseMessage = fastPath(messageSchema, exactMessage);
/** `eventsParamsSchema.safeParse`, without copies for well-formed events. */
export const parseEventsParams = fastPath(eventsParamsSchema as z.ZodType<EventsParams>, exactEventsParams);
/** `commandResultSchema.safeParse`, without a copy for a well-formed ack. */
export const parseCommandResult = fastPath(commandResultSchema, exactCommandResult);
/** `commandParamsSchema.safeParse`, without a copy for a well-formed command. */
export const parseCommandParams = fastPath(commandParamsSchema as z.ZodType<CommandParams>, exactCommand);
