/** Test helpers for domains: one stream run the way the hub runs it, and rejections caught by value. */
import { applyCommand } from '../src/applyCommand.js';
import type { AnyDomain, EventOf, StateOf } from '../src/domain.js';
import { DomainRejection } from '../src/errors.js';

export interface RunOptions {
  /** Command id; default `cmd-<n>`. */
  id?: string;
  /** The sending client (lease holder). */
  clientId?: string;
}

/** One stream of `domain` (versions, times, deterministic ids as the hub assigns them). */
export function domainStream<D extends AnyDomain>(domain: D, stream: string, now = 1_000) {
  let state: StateOf<D> = domain.initialState();
  let version = 0;
  let counter = 0;
  const log: EventOf<D>[] = [];
  const run = (type: string, payload: unknown, { id = `cmd-${++counter}`, clientId }: RunOptions = {}): EventOf<D>[] => {
    const result = applyCommand(domain, state, { id, type, payload }, { now, version, stream, ...(clientId !== undefined && { clientId }) });
    state = result.state;
    version = result.version;
    log.push(...result.events);
    return result.events;
  };
  return {
    get state() {
      return state;
    },
    get version() {
      return version;
    },
    log,
    advance(ms: number) {
      now += ms;
    },
    run,
    /** Like `run`, answering only each event's type and data. */
    runBrief(type: string, payload: unknown, options?: RunOptions) {
      return run(type, payload, options).map(({ type, data }: { type: string; data: unknown }) => ({ type, data }));
    },
  };
}

/** The rejection `fn` throws; fails when it throws something else or nothing. */
export function rejectionOf(fn: () => unknown): DomainRejection {
  try {
    fn();
  } catch (error) {
    if (error instanceof DomainRejection) return error;
    throw error;
  }
  throw new Error('expected a rejection');
}
