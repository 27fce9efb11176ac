import { describe, expect, it } from 'vitest';
import * as protocol from './protocol.js';
import { createRandom, type Random } from './random.js';

/**
 * The fast paths of protocol.ts (parseMessage, parseEventsParams, parseCommandResult,
 * parseCommandParams) must answer exactly what their zod schemas answer: the same verdict on every
 * value, and a value equal to the schema's output when valid. Checked on valid messages and on
 * seeded mutations of them; the seed is in the test name and in every failure message.
 */

const event = (version: number, extra: Record<string, unknown> = {}) => ({
  version,
  type: 'task.updated',
  data: { id: 'task_1', changes: { title: `t${version}` }, at: 1 },
  time: 1717171717000,
  commandId: `cli_7f3a:${version}`,
  ...extra,
});

interface Case {
  parse(value: unknown): { success: boolean; data?: unknown };
  schema: { parse(value: unknown): unknown; safeParse(value: unknown): { success: boolean; data?: unknown } };
  valid: readonly unknown[];
}

const cases: Record<string, Case> = {
  message: {
    parse: protocol.parseMessage,
    schema: protocol.messageSchema,
    valid: [
      { jsonrpc: '2.0', id: 1, method: 'command', params: { a: 1 } },
      { jsonrpc: '2.0', id: 'r-1', result: { version: 3 } },
      { jsonrpc: '2.0', id: null, error: { code: -32600, message: 'no', data: { x: 1 } } },
      { jsonrpc: '2.0', method: 'events', params: { stream: 'tasks/p', events: [event(1)] } },
    ],
  },
  eventsParams: {
    parse: protocol.parseEventsParams,
    schema: protocol.eventsParamsSchema,
    valid: [
      { stream: 'tasks/p', events: [event(1), event(2)] },
      { stream: 'tasks/p', events: [{ version: 9, type: 'added', data: null, time: 0 }] },
      { stream: 'tasks/p', events: [event(3)], catchUp: true },
    ],
  },
  commandResult: {
    parse: protocol.parseCommandResult,
    schema: protocol.commandResultSchema,
    valid: [
      { id: 'cli:1', stream: 'tasks/p', version: 4 },
      { id: 'cli:1', stream: 'tasks/p', version: 0, duplicate: true },
    ],
  },
  commandParams: {
    parse: protocol.parseCommandParams,
    schema: protocol.commandParamsSchema,
    valid: [
      { id: 'cli_7f3a:2', stream: 'tasks/proj_1', type: 'task.update', payload: { id: 't', title: 'x' } },
      { id: 'a', stream: 'counter/x', type: 'add', payload: { by: 1 }, expectedVersion: 3 },
      { id: 'cli_7f3a:3', stream: 'tasks/proj_1', type: 'task.update', payload: { id: 't' }, explicitAck: true },
    ],
  },
};

const ODD_VALUES: unknown[] = [
  undefined,
  null,
  true,
  0,
  -1,
  1.5,
  -0,
  2 ** 53,
  Number.MAX_SAFE_INTEGER,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  '',
  'x',
  '2.0',
  'a'.repeat(128),
  'a'.repeat(129),
  'tasks/ok',
  'Tasks/bad',
  'tasks/',
  'has space',
  [],
  [1],
  {},
  { a: 1 },
  Object.create(null),
];

function mutate(value: unknown, random: Random, depth = 0): unknown {
  if (typeof value !== 'object' || value === null || depth > 3) return random.pick(ODD_VALUES);
  if (Array.isArray(value)) {
    const copy = [...value];
    if (copy.length > 0 && random.chance(0.7)) {
      const at = random.int(copy.length);
      copy[at] = mutate(copy[at], random, depth + 1);
    } else if (random.chance(0.5)) copy.length = 0;
    else copy.push(random.pick(ODD_VALUES));
    return copy;
  }
  const copy: Record<string, unknown> = { ...(value as Record<string, unknown>) };
  const keys = Object.keys(copy);
  switch (random.int(5)) {
    case 0:
      if (keys.length > 0) delete copy[random.pick(keys)];
      break;
    case 1:
      copy[random.pick(['extra', 'ID', 'constructor', 'toString'])] = random.pick(ODD_VALUES);
      break;
    case 2:
      // A `__proto__` own key, as JSON.parse makes it.
      return JSON.parse(JSON.stringify({ ...copy, __proto__x: 1 }).replace('"__proto__x"', '"__proto__"'));
    default:
      if (keys.length > 0) {
        const key = random.pick(keys);
        copy[key] = mutate(copy[key], random, depth + 1);
      }
  }
  return copy;
}

describe.each(Object.entries(cases))('protocol fast path: %s', (_, { parse, schema, valid }) => {
  it('accepts the valid values as they are, equal to what the schema gives', () => {
    for (const value of valid) {
      const fast = parse(value);
      expect(fast.success).toBe(true);
      // The fast path was taken: no copy.
      expect(fast.data).toBe(value);
      expect(fast.data).toEqual(schema.parse(value));
    }
  });

  const seed = Number(process.env['LOCKSTEP_SEED'] ?? 20261121);
  it(`agrees with the schema on 20,000 mutated values (seed ${seed})`, () => {
    const random = createRandom(seed);
    for (let i = 0; i < 20_000; i++) {
      let value: unknown = random.pick(valid);
      for (let n = 1 + random.int(3); n > 0; n--) value = mutate(value, random);
      const fast = parse(value);
      const slow = schema.safeParse(value);
      const where = `seed ${seed}, case ${i}: ${JSON.stringify(value)}`;
      expect(fast.success, where).toBe(slow.success);
      if (fast.success && slow.success) expect(fast.data, where).toEqual(slow.data);
    }
  });
});
