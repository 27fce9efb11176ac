/** The two append workloads both store benchmarks measure, so their figures compare. */
import type { Commit, EventStore } from '@lockstep/server';
import { smoke } from './stats.js';

export const SEQUENTIAL = smoke ? 50 : 2_000;
export const APPENDERS = 64;
export const PER_APPENDER = smoke ? 5 : 100;

/** One commit of one event, as a hub appends a batch of one command. */
export function commit(id: string, version: number): Commit {
  return {
    commandId: id,
    fingerprint: `fp:${id}`,
    events: [{ version, type: 'task.created', data: { id, title: 'Write the benchmark', priority: 'high' }, time: Date.now(), commandId: id }],
  };
}

/** Appends per second, one at a time (the latency-bound case). */
export async function sequential(store: EventStore, tag: string): Promise<number> {
  const stream = `tasks/seq-${tag}`;
  const start = process.hrtime.bigint();
  for (let i = 0; i < SEQUENTIAL; i++) await store.append(stream, i, [commit(`${tag}.s${i}`, i + 1)]);
  return SEQUENTIAL / (Number(process.hrtime.bigint() - start) / 1e9);
}

/** Appends per second, 64 appenders at once, each on its own stream. */
export async function concurrent(store: EventStore, tag: string): Promise<number> {
  const start = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: APPENDERS }, async (_, a) => {
      for (let i = 0; i < PER_APPENDER; i++) await store.append(`tasks/con-${tag}-${a}`, i, [commit(`${tag}.c${a}.${i}`, i + 1)]);
    }),
  );
  return (APPENDERS * PER_APPENDER) / (Number(process.hrtime.bigint() - start) / 1e9);
}
