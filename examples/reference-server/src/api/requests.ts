import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { COMMAND_ID_PATTERN, LockstepError, STREAM_KEY_PATTERN } from '@lockstep/core';
import { z } from 'zod';
import { PROJECT_ID } from '../contract.js';

/**
 * The edges of a REST request — headers, query strings, the wrapper around a command's payload —
 * validated with zod and refused with `INVALID_PARAMS` (zod issues in `details.issues`), exactly as a
 * bad command envelope is over WebSocket. Command payloads themselves are not validated here: the
 * hub validates them with the domain's schemas, the same code path as every other transport.
 */

export function invalid(message: string, issues: readonly unknown[]): LockstepError {
  return new LockstepError('INVALID_PARAMS', message, { issues });
}

export function parse<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw invalid(`invalid ${what}`, parsed.error.issues);
  return parsed.data;
}

export const projectIdSchema = z.string().regex(STREAM_KEY_PATTERN, 'project ids are stream keys: letters, digits and _.:@-, not starting with . : @ -');

const idempotencyKeySchema = z.string().regex(COMMAND_ID_PATTERN, 'Idempotency-Key: 1–128 characters of A-Z a-z 0-9 _ . : @ -');

/**
 * The command id of a request: its `Idempotency-Key` header verbatim (a retry with the same key and
 * body is the same command: applied once, answered the same), else a fresh one.
 */
export function commandIdOf(request: IncomingMessage): string {
  const key = request.headers['idempotency-key'];
  if (key === undefined) return `rest:${randomUUID()}`;
  return parse(idempotencyKeySchema, Array.isArray(key) ? key.join(',') : key, 'Idempotency-Key header');
}

const ifMatchSchema = z
  .string()
  .regex(/^(?:W\/)?"?(0|[1-9]\d{0,15})"?$/, 'If-Match: the stream version from an ETag, e.g. "7"')
  .transform((value) => Number(/\d+/.exec(value)![0]))
  .pipe(z.number().int().max(Number.MAX_SAFE_INTEGER));

/** `If-Match: "N"` → `expectedVersion: N` (optimistic concurrency); `*` or none → no condition. */
export function expectedVersionOf(request: IncomingMessage): number | undefined {
  const header = request.headers['if-match'];
  if (header === undefined || header.trim() === '*') return undefined;
  return parse(ifMatchSchema, header.trim(), 'If-Match header');
}

/** A JSON body must be an object; no body is an empty one. */
const bodyObjectSchema = z.record(z.string(), z.unknown());

/**
 * Splits a request body into the project it addresses and the command payload: `projectId` (body,
 * else `?projectId=`, else the default project) is routing, the rest is the payload. Path ids are
 * added to the payload; naming one in the body as well is refused, so a body can never retarget a
 * request at another entity than its URL says.
 */
export function commandBody(
  body: unknown,
  query: URLSearchParams,
  pathIds: Record<string, string> = {},
): { projectId: string; payload: Record<string, unknown> } {
  const { projectId: bodyProject, ...payload } = parse(bodyObjectSchema, body ?? {}, 'body');
  return { projectId: projectOf(query, bodyProject), payload: withPathIds(payload, pathIds) };
}

/** A body (an object, or nothing) as a payload with the URL's ids added; the body may not name them too. */
export function payloadWithPathIds(body: unknown, pathIds: Record<string, string>): Record<string, unknown> {
  return withPathIds(parse(bodyObjectSchema, body ?? {}, 'body'), pathIds);
}

function withPathIds(payload: Record<string, unknown>, pathIds: Record<string, string>): Record<string, unknown> {
  const repeated = Object.keys(pathIds).filter((key) => Object.hasOwn(payload, key));
  if (repeated.length > 0) {
    throw invalid(
      'invalid body',
      repeated.map((key) => ({ code: 'custom', path: [key], message: `${key} is in the URL; leave it out of the body` })),
    );
  }
  return { ...payload, ...pathIds };
}

/** The project of a request: `projectId` from the body or the query (not two different ones), else PROJECT_ID. */
export function projectOf(query: URLSearchParams, fromBody?: unknown): string {
  const fromQuery = query.get('projectId') ?? undefined;
  if (fromBody !== undefined && fromQuery !== undefined && fromBody !== fromQuery) {
    throw invalid('invalid request', [{ code: 'custom', path: ['projectId'], message: 'projectId differs between the body and the query string' }]);
  }
  return parse(projectIdSchema, fromBody ?? fromQuery ?? PROJECT_ID, 'projectId');
}

/** Parses the query string with a strict schema: unknown parameters are refused, like unknown body fields. */
export function parseQuery<T>(schema: z.ZodType<T>, query: URLSearchParams): T {
  return parse(schema, Object.fromEntries(query), 'query string');
}

/** A version in a query string or a `Last-Event-ID` header. */
export const versionParamSchema = z
  .string()
  .regex(/^(0|[1-9]\d{0,15})$/, 'a version: a whole number ≥ 0')
  .transform(Number)
  .pipe(z.number().int().max(Number.MAX_SAFE_INTEGER));
