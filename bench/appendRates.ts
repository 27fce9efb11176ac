/** The two append workloads the store benchmark measures on every store, so their figures compare. */
import type { Commit, EventStore } from '@lockstep/server';
import { smoke } from './stats.js';

export const SEQUENTIAL = smoke ? 50 : 2_000;
/** Concurrent appenders, each on its own stream (issue 8: single writer and 20 concurrent). */
export const APPENDERS = 20;
export const PER_APPENDER = smoke ? 5 : 200;

/** What the workloads need of a store: the baseline of raw appends has nothing else. */
export type Appender = Pick<EventStore, 'append'>;

/** One commit of one event, as a hub appends a batch of one command. */
export function commit(id: string, version: number): Commit {
  return {
    commandId: id,
    fingerprint: `fp:${id}`,
    events: [{ version, type: 'task.created', data: { id, title: 'Write the benchmark', priority: 'high' }, time: Date.now(), commandId: id }],
  };
}

/** Appends per second, one at a time (the latency-bound case). */
export async function sequential(store: Appender, tag: string): Promise<number> {
  const stream = `tasks/seq-${tag}`;
  const start = process.hrtime.bigint();
  for (let i = 0; i < SEQUENTIAL; i++) await store.append(stream, i, [commit(`${tag}.s${i}`, i + 1)]);
  return SEQUENTIAL / (Number(process.hrtime.bigint() - start) / 1e9);
}

/** Appends per second, APPENDERS appenders at once, each on its own stream. */
export async function concurrent(store: Appender, tag: string): Promise<number> {
  const start = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: APPENDERS }, async (_, a) => {
      for (let i = 0; i < PER_APPENDER; i++) await store.append(`tasks/con-${tag}-${a}`, i, [commit(`${tag}.c${a}.${i}`, i + 1)]);
    }),
  );
  return (APPENDERS * PER_APPENDER) / (Number(process.hrtime.bigint() - start) / 1e9);
}
