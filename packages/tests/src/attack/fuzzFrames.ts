import { Buffer } from 'node:buffer';
import type { Random } from '@lockstep/core';
import { msgpackCodec } from '@lockstep/core/msgpack';

/**
 * Seeded generation of hostile frames: valid lockstep/1 messages, then mutated — bit flips,
 * truncation, spliced bytes, type confusion, huge numbers, deep nesting, `__proto__` / `constructor`
 * / `prototype` keys — or plain random bytes. The same seed gives the same frames.
 */

/** Valid messages of every kind a peer might send (and some it should not: responses, batches). */
const VALID_KINDS = 13;

/** One valid message of a random kind. */
export function validMessage(random: Random): unknown {
  const id = () => (random.chance(0.5) ? random.int(1_000) : `r-${random.int(1_000)}`);
  const commandId = () => `fz-${random.int(5_000)}`;
  switch (random.int(VALID_KINDS)) {
    case 0:
      return {
        jsonrpc: '2.0',
        id: id(),
        method: 'hello',
        params: { protocol: 1, clientId: `fuzz-${random.int(100)}`, token: 'tok', capabilities: { codec: 'json' } },
      };
    case 1:
      return { jsonrpc: '2.0', id: id(), method: 'subscribe', params: { stream: 'tasks/fz', since: random.int(10) } };
    case 2:
      return { jsonrpc: '2.0', id: id(), method: 'subscribe', params: { stream: 'counter/fz' } };
    case 3:
      return { jsonrpc: '2.0', id: id(), method: 'unsubscribe', params: { stream: 'counter/fz' } };
    case 4:
      return { jsonrpc: '2.0', id: id(), method: 'command', params: { id: commandId(), stream: 'counter/fz', type: 'add', payload: { by: random.int(5) } } };
    case 5:
      return {
        jsonrpc: '2.0',
        id: id(),
        method: 'command',
        params: {
          id: commandId(),
          stream: 'tasks/fz',
          type: 'task.create',
          payload: { title: `task ${random.int(100)}`, priority: 'high' },
          expectedVersion: random.int(20),
        },
      };
    case 6:
      return {
        jsonrpc: '2.0',
        id: id(),
        method: 'command',
        params: {
          id: commandId(),
          stream: 'orchestration/default',
          type: 'workspace.setDesired',
          payload: { workspaceId: `w${random.int(9)}`, desired: random.int(9) },
        },
      };
    case 7:
      return {
        jsonrpc: '2.0',
        id: id(),
        method: 'command',
        params: { id: commandId(), stream: 'focus/fz', type: 'focus.setMany', payload: { sessionIds: ['s1', 's2', 's3'] } },
      };
    case 8:
      return { jsonrpc: '2.0', id: id(), method: 'ping', params: {} };
    case 9:
      return { jsonrpc: '2.0', method: 'events', params: { stream: 'counter/fz', events: [{ version: 1, type: 'added', data: { by: 1 }, time: 0 }] } };
    case 10:
      return { jsonrpc: '2.0', id: id(), result: { time: 1 } };
    case 11:
      return { jsonrpc: '2.0', id: id(), error: { code: -32600, message: 'no' } };
    default:
      return [{ jsonrpc: '2.0', id: 1, method: 'ping' }];
  }
}

const HOSTILE_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf'];
const HUGE = [1e308, -1e308, 2 ** 53, 2 ** 53 + 2, -(2 ** 63), 1.5, -0, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 0.1];

/** A value of a random type: what type confusion substitutes. */
function anyValue(random: Random, depth = 0): unknown {
  switch (random.int(depth > 2 ? 6 : 8)) {
    case 0:
      return null;
    case 1:
      return random.chance(0.5);
    case 2:
      return random.pick(HUGE);
    case 3:
      return random.int(100);
    case 4:
      return random.pick(['', 'x', '2.0', 'hello', 'counter/fz', '../../etc/passwd', "'; DROP TABLE events; --", '\u0000', '\ud800', '𝄞'.repeat(10)]);
    case 5:
      return 'y'.repeat(random.int(300));
    case 6:
      return Array.from({ length: random.int(4) }, () => anyValue(random, depth + 1));
    default:
      return Object.fromEntries(
        Array.from({ length: random.int(4) }, () => [random.pick([...HOSTILE_KEYS, 'a', 'id', 'stream']), anyValue(random, depth + 1)]),
      );
  }
}

/** Deep-copies a JSON value, keeping own `__proto__` keys as own keys. */
function copy(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value)) as unknown;
}

/** Every (container, key) pair inside a value. */
function slots(value: unknown, found: Array<[Record<string, unknown> | unknown[], string | number]> = []) {
  if (Array.isArray(value)) value.forEach((item, index) => (found.push([value, index]), slots(item, found)));
  else if (typeof value === 'object' && value !== null)
    for (const key of Object.keys(value)) (found.push([value as Record<string, unknown>, key]), slots((value as Record<string, unknown>)[key], found));
  return found;
}

/** A structural mutation of a message: a member replaced, deleted, nested, or a hostile key added. */
function mutateStructure(random: Random, message: unknown): unknown {
  const root = copy(message);
  const all = slots(root);
  if (all.length === 0) return anyValue(random);
  const [container, key] = random.pick(all);
  const slot = container as Record<string | number, unknown>;
  switch (random.int(5)) {
    case 0:
      slot[key] = anyValue(random);
      break;
    case 1:
      if (Array.isArray(container)) container.splice(key as number, 1);
      else delete slot[key];
      break;
    case 2: {
      let nested: unknown = slot[key];
      for (let i = 0, depth = random.pick([2, 30, 70]); i < depth; i++) nested = random.chance(0.5) ? [nested] : { a: nested };
      slot[key] = nested;
      break;
    }
    case 3: {
      const target = typeof slot[key] === 'object' && slot[key] !== null && !Array.isArray(slot[key]) ? (slot[key] as Record<string, unknown>) : root;
      if (typeof target === 'object' && target !== null && !Array.isArray(target)) {
        // defineProperty: an own `__proto__` member, as JSON.parse makes it, never the prototype.
        Object.defineProperty(target, random.pick(HOSTILE_KEYS), {
          value: random.chance(0.5) ? { polluted: true, stream: 'counter/fz' } : anyValue(random),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      break;
    }
    default:
      slot[key] = random.pick(HUGE);
  }
  return root;
}

/** Byte-level mutations of an encoded frame. */
function mutateBytes(random: Random, bytes: Uint8Array): Uint8Array {
  const out = Buffer.from(bytes);
  switch (random.int(6)) {
    case 0: {
      const flips = 1 + random.int(4);
      for (let i = 0; i < flips && out.length > 0; i++) out[random.int(out.length)]! ^= 1 << random.int(8);
      return out;
    }
    case 1:
      return out.subarray(0, random.int(out.length));
    case 2: {
      const at = random.int(out.length + 1);
      return Buffer.concat([out.subarray(0, at), Buffer.from(Array.from({ length: 1 + random.int(8) }, () => random.int(256))), out.subarray(at)]);
    }
    case 3: {
      const at = random.int(out.length + 1);
      return Buffer.concat([out.subarray(0, at), out.subarray(at + 1 + random.int(8))]);
    }
    case 4: {
      // A length-like field blown up: 0xff bytes where a header may be.
      const at = random.int(Math.max(1, out.length));
      for (let i = at; i < Math.min(out.length, at + 1 + random.int(4)); i++) out[i] = 0xff;
      return out;
    }
    default: {
      const at = random.int(out.length + 1);
      const piece = out.subarray(random.int(out.length + 1));
      return Buffer.concat([out.subarray(0, at), piece.subarray(0, 1 + random.int(16)), out.subarray(at)]);
    }
  }
}

export type FrameCodec = 'json' | 'msgpack';

/** One hostile frame for a connection speaking `codec`. */
export function hostileFrame(random: Random, codec: FrameCodec): string | Uint8Array {
  const roll = random.next();
  if (roll < 0.05) return Uint8Array.from({ length: random.int(300) }, () => random.int(256));
  const message = validMessage(random);
  const structured = roll < 0.55 ? mutateStructure(random, message) : roll < 0.65 ? message : mutateStructure(random, mutateStructure(random, message));
  if (codec === 'json') {
    const text = JSON.stringify(structured) ?? 'null';
    if (random.chance(0.4)) {
      const bytes = mutateBytes(random, Buffer.from(text, 'utf8'));
      // Half as text (lone surrogates and all), half as bytes (invalid UTF-8 and all).
      return random.chance(0.5) ? Buffer.from(bytes).toString('latin1') : bytes;
    }
    return text;
  }
  let encoded: Uint8Array;
  try {
    encoded = msgpackCodec.encode(structured) as Uint8Array;
  } catch {
    encoded = msgpackCodec.encode(message) as Uint8Array;
  }
  return random.chance(0.5) ? mutateBytes(random, encoded) : encoded;
}
