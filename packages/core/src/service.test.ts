import { describe, expect, expectTypeOf, it } from 'vitest';
import * as z from 'zod';
import {
  defineService,
  isCompatibleVersion,
  method,
  notServedError,
  notification,
  type ParamsInput,
  type ParamsOutput,
  type ResultOutput,
  type ServiceHandlers,
} from './service.js';

const orchestrate = defineService('orchestrate', '1.2.0', {
  route: method({ params: z.object({ command: z.string(), priority: z.number().default(1) }), result: z.object({ agent: z.string() }) }),
  status: method({ params: z.undefined(), result: z.object({ busy: z.boolean() }), idempotent: true }),
  progress: notification({ params: z.object({ percent: z.number().min(0).max(100) }) }),
});

describe('defineService', () => {
  it('names each member `<service>.<member>` and keeps its schemas and flags', () => {
    expect(orchestrate.name).toBe('orchestrate');
    expect(orchestrate.version).toBe('1.2.0');
    expect(orchestrate.route).toMatchObject({
      kind: 'method',
      service: 'orchestrate',
      version: '1.2.0',
      name: 'route',
      method: 'orchestrate.route',
      idempotent: false,
    });
    expect(orchestrate.status.idempotent).toBe(true);
    expect(orchestrate.progress).toMatchObject({ kind: 'notification', method: 'orchestrate.progress' });
    expect([...orchestrate.members.keys()]).toEqual(['orchestrate.route', 'orchestrate.status', 'orchestrate.progress']);
    expect(Object.isFrozen(orchestrate)).toBe(true);
    expect(Object.isFrozen(orchestrate.route)).toBe(true);
  });

  it('refuses names that could meet the protocol’s own, invalid versions and odd members', () => {
    const ok = { a: method({ params: z.object({}), result: z.object({}) }) };
    for (const name of ['', 'Orchestrate', '$', '$/cancel', 'a.b', 'with space', 'x'.repeat(64), '1abc']) {
      expect(() => defineService(name, '1.0.0', ok), name).toThrow(RangeError);
    }
    for (const version of ['1', '1.0', 'v', '^1.0.0', 'latest']) expect(() => defineService('svc', version, ok), version).toThrow(/semver/);
    for (const member of ['name', 'version', 'members', 'constructor', 'a.b', '$x', '1x', 'with-dash']) {
      expect(() => defineService('svc', '1.0.0', { [member]: method({ params: z.object({}), result: z.object({}) }) } as never), member).toThrow(RangeError);
    }
    expect(() => defineService('svc', '1.0.0', { a: z.object({}) } as never)).toThrow(/neither method\(\) nor notification\(\)/);
  });

  it('infers params, results and handlers from the schemas', () => {
    expectTypeOf<ParamsInput<typeof orchestrate.route>>().toEqualTypeOf<{ command: string; priority?: number | undefined }>();
    expectTypeOf<ParamsOutput<typeof orchestrate.route>>().toEqualTypeOf<{ command: string; priority: number }>();
    expectTypeOf<ResultOutput<typeof orchestrate.status>>().toEqualTypeOf<{ busy: boolean }>();
    expectTypeOf<ParamsOutput<typeof orchestrate.progress>>().toEqualTypeOf<{ percent: number }>();
    const handlers: ServiceHandlers<typeof orchestrate, { who: string }> = {
      route: ({ command, priority }, { who }) => ({ agent: `${who}:${command}:${priority.toFixed(0)}` }),
      status: async () => ({ busy: false }),
    };
    expect(handlers.route({ command: 'x', priority: 2 }, { who: 'a' })).toEqual({ agent: 'a:x:2' });
    // @ts-expect-error: a handler for every method, and notifications have none
    const missing: ServiceHandlers<typeof orchestrate, unknown> = { route: () => ({ agent: 'a' }) };
    // @ts-expect-error: the result must fit the result schema
    const wrong: ServiceHandlers<typeof orchestrate, unknown> = { route: () => ({ agent: 1 }), status: () => ({ busy: false }) };
    void missing;
    void wrong;
  });
});

describe('isCompatibleVersion (served, wanted)', () => {
  it.each([
    ['1.2.0', '1.2.0', true],
    ['1.9.3', '1.2.0', true],
    ['1.2.7', '1.2.9', true],
    ['1.1.9', '1.2.0', false],
    ['2.0.0', '1.2.0', false],
    ['0.3.1', '0.3.0', true],
    ['0.4.0', '0.3.0', false],
    ['1.3.0-rc.1', '1.2.0', false],
    ['not-a-version', '1.0.0', false],
  ] as const)('%s serves a %s caller: %s', (served, wanted, compatible) => {
    expect(isCompatibleVersion(served, wanted)).toBe(compatible);
  });

  it('names what is missing in the METHOD_NOT_FOUND it makes', () => {
    expect(notServedError(orchestrate.route, undefined)).toMatchObject({
      code: 'METHOD_NOT_FOUND',
      data: { method: 'orchestrate.route', service: 'orchestrate', reason: 'notServed' },
    });
    expect(notServedError(orchestrate.route, '2.0.0')).toMatchObject({
      code: 'METHOD_NOT_FOUND',
      data: { reason: 'incompatibleVersion', served: '2.0.0', wanted: '1.2.0' },
    });
  });
});
