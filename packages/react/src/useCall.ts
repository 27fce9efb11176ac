import type { CallOptions, LockstepClient } from '@lockstep/client';
import {
  LockstepError,
  createAbortController,
  type AbortControllerLike,
  type AnyServiceMethod,
  type CallArguments,
  type ParamsInput,
  type ResultOutput,
} from '@lockstep/core';
import { useCallback, useEffect, useMemo, useRef, useState, useSyncExternalStore } from 'react';
import { useLockstepClient } from './LockstepProvider.js';

/** Where a call of a service method stands, as a component shows it. */
export interface CallState<M extends AnyServiceMethod> {
  /** The last answer (validated with the method's result schema); kept while the next call runs. */
  result: ResultOutput<M> | undefined;
  /** The last call's refusal or failure (`code`, `data`): the hub's answer, `UNAVAILABLE`, `TIMEOUT`, … */
  error: LockstepError | undefined;
  /** A call is on its way (or, for a call made from params, waiting for the connection). */
  pending: boolean;
}

/** {@link useCall} with a method only: calls made on demand. */
export interface CallAction<M extends AnyServiceMethod> extends CallState<M> {
  /**
   * Calls the method (`client.call`): resolves with its result and rejects with its error, which the
   * state shows too. Stable across renders. Pending calls are cancelled when the component unmounts.
   */
  call(...args: CallArguments<M, CallOptions>): Promise<ResultOutput<M>>;
  /** Forgets the result and the error; the answers of calls still on their way are not shown. */
  reset(): void;
}

/** {@link useCall} with params: the method's answer for them, kept up to date. */
export interface CallResult<M extends AnyServiceMethod> extends CallState<M> {
  /** Calls again (the result stays shown meanwhile). Stable across renders. */
  refresh: () => void;
}

export interface UseCallOptions {
  /** False: no call is made (and none is pending) — for params that are not known yet. Default true. */
  enabled?: boolean;
  /** Per call: see `CallOptions.timeoutMs`. Default: the client's `callTimeoutMs`. */
  timeoutMs?: number;
}

const IDLE = { result: undefined, error: undefined, pending: false } as const;

/**
 * Calls a method of a service the hub serves, on demand: `const stop = useCall(daemon.stopSession)`,
 * then `stop.call({ sessionId })` — typed by the method's schemas — with `stop.pending`, `stop.result`
 * and `stop.error` for the last call. Calls still on their way when the component unmounts are
 * cancelled (their promises reject with `CANCELLED`; the hub's handler sees its signal abort).
 */
export function useCall<M extends AnyServiceMethod>(method: M): CallAction<M>;
/**
 * The method's answer for `params`, as state: called on mount, again when `params` change (compared by
 * value, as JSON: an inline object literal is fine), when the connection is back after a drop (the
 * answer may have changed meanwhile), and on `refresh()`. While the client is not connected the call
 * waits (`pending`). A call made stale by new params, a drop or an unmount is cancelled. The first
 * argument after the method is always `params`: `useCall(service.status, undefined)` for a method that
 * takes none. Meant for methods without side effects: they may run again on every reconnect.
 */
export function useCall<M extends AnyServiceMethod>(method: M, params: ParamsInput<M>, options?: UseCallOptions): CallResult<M>;
export function useCall<M extends AnyServiceMethod>(method: M, ...auto: [params?: ParamsInput<M>, options?: UseCallOptions]): CallAction<M> | CallResult<M> {
  const client = useLockstepClient();
  const onDemand = auto.length === 0;
  // Both run on every render (hooks in a fixed order); the form not asked for stays idle.
  const action = useCallAction(client, method);
  const result = useCallResult(client, method, auto[0] as ParamsInput<M>, onDemand ? DISABLED : (auto[1] ?? {}));
  return onDemand ? action : result;
}

const DISABLED: UseCallOptions = { enabled: false };

function useCallAction<M extends AnyServiceMethod>(client: LockstepClient, method: M): CallAction<M> {
  const [state, setState] = useState<CallState<M>>(IDLE);
  /** Only the latest call's answer is shown. */
  const latest = useRef(0);
  const inFlight = useRef(new Set<AbortControllerLike>());
  useEffect(() => {
    const controllers = inFlight.current;
    return () => {
      latest.current++;
      for (const controller of controllers) controller.abort();
      controllers.clear();
    };
  }, []);

  const call = useCallback(
    (...[params, options = {}]: CallArguments<M, CallOptions>): Promise<ResultOutput<M>> => {
      const id = ++latest.current;
      const controller = createAbortController();
      // The caller's own signal cancels it too.
      const { signal: callerSignal, ...rest } = options;
      const abort = () => controller.abort();
      if (callerSignal?.aborted) abort();
      else callerSignal?.addEventListener('abort', abort, { once: true });
      const settled = () => {
        inFlight.current.delete(controller);
        callerSignal?.removeEventListener('abort', abort);
      };
      inFlight.current.add(controller);
      setState((previous) => (previous.pending ? previous : { ...previous, pending: true }));
      const answer = callMethod(client, method, params, { ...rest, signal: controller.signal });
      answer.then(
        (result) => {
          settled();
          if (id === latest.current) setState({ result, error: undefined, pending: false });
        },
        (error: unknown) => {
          settled();
          if (id === latest.current) setState((previous) => ({ result: previous.result, error: LockstepError.from(error), pending: false }));
        },
      );
      return answer;
    },
    [client, method],
  );
  const reset = useCallback(() => {
    latest.current++;
    setState(IDLE);
  }, []);
  return useMemo(() => ({ ...state, call, reset }), [state, call, reset]);
}

/** The answer to one request: `token` says which (the connection, the params, the refresh). */
interface Answer<M extends AnyServiceMethod> {
  token: string;
  /** The params (as JSON) it answered. */
  key: string;
  result: ResultOutput<M> | undefined;
  error: LockstepError | undefined;
}

const NO_ANSWER = { token: '', key: '', result: undefined, error: undefined } as const;

function useCallResult<M extends AnyServiceMethod>(client: LockstepClient, method: M, params: ParamsInput<M>, options: UseCallOptions): CallResult<M> {
  const { enabled = true, timeoutMs } = options;
  // The params by value: a new request when the value changes, not the object.
  const key = paramsKey(params);
  const { subscribe, getSnapshot } = connections(client);
  // Disabled, the hook does not follow the connection (no renders for it).
  const connection = useSyncExternalStore(enabled ? subscribe : ignoreChanges, getSnapshot, getSnapshot);
  const [refreshes, setRefreshes] = useState(0);
  const [answer, setAnswer] = useState<Answer<M>>(NO_ANSWER);
  /** This render's request: pending until answered. */
  const token = `${connection}|${refreshes}|${key}`;

  useEffect(() => {
    if (!enabled || connection === 0) return;
    const controller = createAbortController();
    callMethod(client, method, params, { signal: controller.signal, ...(timeoutMs !== undefined && { timeoutMs }) }).then(
      (result) => {
        if (!controller.signal.aborted) setAnswer({ token, key, result, error: undefined });
      },
      (error: unknown) => {
        // A failed refresh keeps the last result for these params beside the error.
        if (!controller.signal.aborted)
          setAnswer((previous) => ({ token, key, result: previous.key === key ? previous.result : undefined, error: LockstepError.from(error) }));
      },
    );
    // New params, a new connection, a refresh or an unmount: this answer is no longer wanted.
    return () => controller.abort();
    // `params` is left out on purpose: `key` is its value (same key, equal params).
  }, [client, method, token, key, connection, enabled, timeoutMs]);

  const refresh = useCallback(() => setRefreshes((count) => count + 1), []);
  // What was answered for these params stays shown while they are asked again; nothing of other params.
  const own = enabled && answer.key === key;
  const result = own ? answer.result : undefined;
  const error = own ? answer.error : undefined;
  const pending = enabled && answer.token !== token;
  return useMemo(() => ({ result, error, pending, refresh }), [result, error, pending, refresh]);
}

/** `client.call` with the params and options as values (the overloads are for callers who know the method). */
function callMethod<M extends AnyServiceMethod>(
  client: LockstepClient,
  method: M,
  params: ParamsInput<M> | undefined,
  options: CallOptions,
): Promise<ResultOutput<M>> {
  return (client.call as (method: M, params: unknown, options: CallOptions) => Promise<ResultOutput<M>>)(method, params, options);
}

const ignoreChanges = (): (() => void) => () => {};

/** Params as a key: the JSON they travel as (`undefined` for none). */
function paramsKey(params: unknown): string {
  return params === undefined ? 'undefined' : JSON.stringify(params);
}

interface Connections {
  subscribe: (onChange: () => void) => () => void;
  /** 0 while the client cannot make calls; else the number of its connection (1, 2, …), new after each reconnect. */
  getSnapshot: () => number;
}

/** Per client: which connection is ready for calls (online or resyncing), followed for the client's lifetime. */
const connectionStores = new WeakMap<LockstepClient, Connections>();
function connections(client: LockstepClient): Connections {
  let store = connectionStores.get(client);
  if (store) return store;
  const listeners = new Set<() => void>();
  let count = 0;
  let current = 0;
  client.status$.subscribe(({ status }) => {
    const ready = status === 'online' || status === 'resyncing';
    const next = ready ? (current === 0 ? ++count : current) : 0;
    if (next === current) return;
    current = next;
    for (const listener of [...listeners]) listener();
  });
  store = {
    subscribe: (onChange) => {
      listeners.add(onChange);
      return () => listeners.delete(onChange);
    },
    getSnapshot: () => current,
  };
  connectionStores.set(client, store);
  return store;
}
