/**
 * Golden wire fixtures: frames of lockstep/1 as released. Every later release must still decode
 * and accept them, so these files are never regenerated or edited — a new protocol version adds
 * new files next to them (scripts/generateWireFixtures.ts writes the msgpack twin once).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { jsonCodec } from './codec.js';
import { ErrorCodes, LockstepError, type ErrorCode } from './errors.js';
import { msgpackCodec } from './msgpack.js';
import * as protocol from './protocol.js';

interface Fixture {
  name: string;
  kind: string;
  code?: ErrorCode;
  frame: string;
}

const read = (file: string) => readFileSync(new URL(`./fixtures/${file}`, import.meta.url), 'utf8');
const fixtures = JSON.parse(read('wire-v1.json')) as Fixture[];
const hexLines = read('wire-v1.msgpack.hex').trimEnd().split('\n');

const paramsSchemas: Record<string, z.ZodType> = {
  hello: protocol.helloParamsSchema,
  subscribe: protocol.subscribeParamsSchema,
  unsubscribe: protocol.unsubscribeParamsSchema,
  command: protocol.commandParamsSchema,
  ping: protocol.pingParamsSchema,
  events: protocol.eventsParamsSchema,
  resync: protocol.resyncParamsSchema,
  snapshot: protocol.snapshotParamsSchema,
  shutdown: protocol.shutdownParamsSchema,
  unsubscribed: protocol.unsubscribedParamsSchema,
  [protocol.CANCEL_REQUEST]: protocol.cancelRequestParamsSchema,
};

const resultSchemas: Record<string, z.ZodType> = {
  hello: protocol.helloResultSchema,
  subscribe: protocol.subscribeResultSchema,
  unsubscribe: protocol.unsubscribeResultSchema,
  command: protocol.commandResultSchema,
  ping: protocol.pingResultSchema,
};

/** The `data` each error code carries (docs/protocol.md, "Errors"); undefined means none. */
const errorDataSchemas: Record<ErrorCode, z.ZodType> = {
  PARSE_ERROR: z.undefined(),
  INVALID_REQUEST: z.undefined(),
  METHOD_NOT_FOUND: z.undefined(),
  INVALID_PARAMS: z.object({ issues: z.array(z.looseObject({ code: z.string(), path: z.array(z.union([z.string(), z.number()])), message: z.string() })) }),
  INTERNAL_ERROR: z.undefined(),
  UNSUPPORTED_PROTOCOL: z.object({ supported: z.array(z.number().int()) }),
  UNAUTHORIZED: z.undefined(),
  FORBIDDEN: z.union([z.object({ stream: z.string(), action: z.enum(['read', 'write']) }), z.object({ method: z.string(), action: z.literal('call') })]),
  UNKNOWN_STREAM: z.object({ domains: z.array(z.string()) }),
  VERSION_CONFLICT: z.object({ currentVersion: protocol.subscribeResultSchema.shape.version }),
  COMMAND_REJECTED: z.looseObject({ reason: z.string() }),
  RATE_LIMITED: z.object({ retryAfterMs: z.number().int().nonnegative() }),
  PAYLOAD_TOO_LARGE: z.object({ limit: z.number().int().positive() }),
  HANDSHAKE_REQUIRED: z.undefined(),
  COMMAND_ID_CONFLICT: z.object({ id: z.string() }),
  UNAVAILABLE: z.undefined(),
  LIMIT_EXCEEDED: z.object({ limit: z.string(), max: z.number().int().nonnegative() }),
  INCOMPATIBLE_APP: z.object({ app: protocol.appRequirementSchema, peer: protocol.appInfoSchema.nullable() }),
  TIMEOUT: z.object({ method: z.string(), timeoutMs: z.number().int().nonnegative() }),
  CANCELLED: z.undefined(),
};

/** A service method or notification's wire name: `<service>.<member>`. */
const SERVICE_METHOD = /^[a-z][A-Za-z0-9_-]{0,62}\.[A-Za-z][A-Za-z0-9_]{0,62}$/;

/** Parses with a schema and checks nothing was stripped, so a typo in a fixture cannot hide. */
function expectAccepted(schema: z.ZodType, value: unknown, what: string): void {
  const result = schema.safeParse(value);
  expect(result.error, `${what}: ${result.error ? z.prettifyError(result.error) : ''}`).toBeUndefined();
  expect(result.data, `${what}: members were stripped`).toStrictEqual(value);
}

function expectContiguous(events: Array<{ version: number }>): void {
  events.forEach((event, index) => expect(event.version).toBe(events[0]!.version + index));
}

describe('golden wire fixtures, lockstep/1', () => {
  it('cover every method, notification and error code', () => {
    const kinds = new Set(fixtures.map((fixture) => fixture.kind));
    for (const method of Object.values(protocol.Methods)) {
      expect(kinds).toContain(`${method}.request`);
      expect(kinds).toContain(`${method}.result`);
    }
    for (const notification of Object.values(protocol.Notifications)) expect(kinds).toContain(`${notification}.notification`);
    const codes = fixtures.filter((fixture) => fixture.kind === 'error').map((fixture) => fixture.code);
    expect([...new Set(codes)].sort()).toStrictEqual(Object.keys(ErrorCodes).sort());
  });

  it('have a msgpack frame for every JSON frame', () => {
    expect(hexLines).toHaveLength(fixtures.length);
  });

  describe.each(fixtures.map((fixture, index) => [fixture.name, fixture, index] as const))('%s', (_, fixture, index) => {
    const message = jsonCodec.decode(fixture.frame) as Record<string, unknown>;

    it('is a JSON-RPC 2.0 message', () => {
      expectAccepted(protocol.messageSchema, message, 'messageSchema');
    });

    it('decodes from its stored msgpack bytes to the same message', () => {
      const hex = hexLines[index]!;
      const bytes = Uint8Array.from(hex.match(/../g) ?? [], (byte) => parseInt(byte, 16));
      expect(msgpackCodec.decode(bytes)).toStrictEqual(message);
    });

    it(`is accepted by the schemas of a ${fixture.kind}`, () => {
      const [name, role] = fixture.kind.split('.') as [string, string];
      switch (role ?? fixture.kind) {
        case 'request':
          expect(message.method).toBe(name);
          expect(message.id).not.toBeNull();
          expect(message.id).toBeDefined();
          expectAccepted(paramsSchemas[name]!, message.params, `${name} params`);
          break;
        case 'notification':
          expect(message.method).toBe(name);
          expect('id' in message).toBe(false);
          expectAccepted(paramsSchemas[name]!, message.params, `${name} params`);
          if (name === 'events') expectContiguous((message.params as protocol.EventsParams).events);
          break;
        case 'result': {
          expect(message.id).toBeDefined();
          expect('error' in message || 'method' in message).toBe(false);
          expectAccepted(resultSchemas[name]!, message.result, `${name} result`);
          if (name === 'subscribe') {
            const result = message.result as protocol.SubscribeResult;
            const carries = [result.events, result.snapshot, result.snapshotPages].filter((part) => part !== undefined);
            expect(carries, 'events, a snapshot or snapshot pages: one of them').toHaveLength(1);
            expect(result.version).toBeLessThanOrEqual(result.head);
            expect(result.oldestRetained).toBeLessThanOrEqual(result.head + 1);
            if (result.events?.length) {
              expectContiguous(result.events);
              expect(result.events.at(-1)!.version).toBe(result.version);
            }
          }
          break;
        }
        case 'error': {
          expect('result' in message || 'method' in message).toBe(false);
          const wire = message.error as protocol.ErrorResponse['error'];
          const error = LockstepError.fromWire(wire);
          expect(error.code).toBe(fixture.code);
          expect(error.rpcCode).toBe(wire.code);
          expect(error.message).toBe(wire.message);
          expect(error.toJSON()).toStrictEqual(wire);
          expectAccepted(errorDataSchemas[fixture.code!], wire.data, `${fixture.code} data`);
          break;
        }
        case 'app-request':
          expect(message.method).toMatch(SERVICE_METHOD);
          expectAccepted(protocol.requestIdSchema, message.id, 'request id');
          break;
        case 'app-notification':
          expect(message.method).toMatch(SERVICE_METHOD);
          expect('id' in message).toBe(false);
          break;
        case 'app-result':
          expectAccepted(protocol.requestIdSchema, message.id, 'request id');
          expect('error' in message || 'method' in message).toBe(false);
          expect('result' in message).toBe(true);
          break;
        default:
          throw new Error(`unknown fixture kind ${fixture.kind}`);
      }
    });
  });
});
