import type { IncomingMessage, ServerResponse } from 'node:http';
import type { protocol } from '@lockstep/core';
import type { Hub, Identity } from '@lockstep/server';
import type { DaemonStatus } from '../daemonStatus.js';
import type { EventStream } from '../http/eventStream.js';
import type { JsonReply } from '../http/reply.js';
import type { Route } from '../http/router.js';
import { commandIdOf, expectedVersionOf } from './requests.js';

/** What a route handler gets. */
export interface ApiContext {
  request: IncomingMessage;
  response: ServerResponse;
  params: Readonly<Record<string, string>>;
  query: URLSearchParams;
  /**
   * Who sent the request, as the hub's `authenticate` decided (undefined when the server runs
   * without authentication). Every read and command of the request is authorized as this identity.
   */
  identity: Identity | undefined;
  /** The JSON body (read and checked on first call): undefined when there is none. */
  body(): Promise<unknown>;
}

/** Answers a JSON reply, or undefined when it has answered itself (an event stream). */
export type ApiHandler = (context: ApiContext) => Promise<JsonReply | undefined>;

export type ApiRoute = Route<ApiHandler>;

/** What the routes need from the server. */
export interface ApiDeps {
  hub: Hub;
  /** Starts a `text/event-stream` answer (heartbeats, bounded buffer), closed with the server. */
  openEventStream: (request: IncomingMessage, response: ServerResponse) => EventStream;
  /** The sessions' programs: profiles, stop, status (`/api/status`, `/api/profiles`, `/api/sessions/:id/stop`). */
  daemon?: DaemonStatus;
  /** How often a `GET /api/status` event stream is sent the status when nothing else moved it. Default 5 s. */
  statusIntervalMs?: number;
}

/**
 * Runs one command through the hub as the request's identity — the same authorization, pipeline,
 * validation and errors as a WebSocket client's command. The command id is the request's `Idempotency-Key` (or a fresh one), and
 * `If-Match: "N"` becomes `expectedVersion: N`.
 */
export function runCommand(
  hub: Hub,
  context: Pick<ApiContext, 'request' | 'identity'>,
  stream: string,
  type: string,
  payload: unknown,
  id: string = commandIdOf(context.request),
): Promise<protocol.CommandResult> {
  const expectedVersion = expectedVersionOf(context.request);
  return hub.execute({ id, stream, type, payload, ...(expectedVersion !== undefined && { expectedVersion }) }, { identity: context.identity });
}

/** A stream's state and version, read as the request's identity (FORBIDDEN when it may not). */
export function readStream(hub: Hub, context: Pick<ApiContext, 'identity'>, stream: string): Promise<{ state: unknown; version: number }> {
  return hub.read(stream, { identity: context.identity });
}

/**
 * The answer to a command: `status` and `body` (the entity as it is now), with the command's
 * outcome in headers — `ETag` (the stream version the body reflects, for `If-Match`),
 * `Lockstep-Command-Id`, `Lockstep-Version` (the version right after the command) and
 * `Idempotent-Replayed: true` when this was a retry of a command already applied.
 */
export function commandReply(ack: protocol.CommandResult, version: number, body: unknown, status = 200): JsonReply {
  const headers: Record<string, string> = {
    ETag: `"${version}"`,
    'Lockstep-Command-Id': ack.id,
    'Lockstep-Version': String(ack.version),
  };
  if (ack.duplicate) headers['Idempotent-Replayed'] = 'true';
  return { status, body, headers };
}

/** The answer to a read, with `ETag: "<version>"`; 304 when the client's `If-None-Match` already has it. */
export function readReply(request: IncomingMessage, version: number, body: unknown): JsonReply {
  const etag = `"${version}"`;
  const known = request.headers['if-none-match']?.split(',').map((tag) => tag.trim().replace(/^W\//, ''));
  if (known?.includes(etag) || known?.includes('*')) return { status: 304, body: undefined, headers: { ETag: etag } };
  return { status: 200, body, headers: { ETag: etag } };
}
