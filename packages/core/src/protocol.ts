import * as z from 'zod';
import { commandIdSchema, commandSchema, eventSchema, streamNameSchema, versionSchema, type Event } from './envelope.js';
import type { WireError } from './errors.js';

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

export const helloParamsSchema = z.object({
  protocol: z.number().int(),
  clientId: commandIdSchema.optional(),
  token: z.string().max(8192).optional(),
  capabilities: z.record(z.string().max(64), z.unknown()).optional(),
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
});
export type SubscribeResult = Omit<z.infer<typeof subscribeResultSchema>, 'events'> & { events?: Event[] };

export const unsubscribeParamsSchema = z.object({ stream: streamNameSchema });
export const unsubscribeResultSchema = z.object({});

export const commandParamsSchema = commandSchema;
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
});
export type EventsParams = { stream: string; events: Event[] };

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

export const Notifications = {
  events: 'events',
  resync: 'resync',
  shutdown: 'shutdown',
} as const;
