import type * as z from 'zod';
import { LockstepError } from './errors.js';
import { parseVersion, satisfies } from './semver.js';

/**
 * Services: an application's own typed methods and notifications on the lockstep/1 connection,
 * defined once (names and zod schemas) and used by both sides — a hub or a client serves a service,
 * the other side calls it. See docs/rpc.md.
 *
 * ```ts
 * export const orchestrate = defineService('orchestrate', '1.2.0', {
 *   route: method({ params: z.object({ command: z.string() }), result: z.object({ agent: z.string() }) }),
 *   status: method({ params: z.object({}), result: z.object({ busy: z.boolean() }), idempotent: true }),
 *   progress: notification({ params: z.object({ percent: z.number() }) }),
 * });
 * // wire names: orchestrate.route, orchestrate.status, orchestrate.progress
 * ```
 */

/** Service names: a lowercase letter, then up to 62 of `A-Z a-z 0-9 _ -` (no `.`, no `$`). */
export const SERVICE_NAME_PATTERN = /^[a-z][A-Za-z0-9_-]{0,62}$/;
/** Method and notification names within a service: a letter, then up to 62 of `A-Z a-z 0-9 _`. */
export const MEMBER_NAME_PATTERN = /^[A-Za-z][A-Za-z0-9_]{0,62}$/;
/** Names a service object uses itself, and names an object inherits: not method names. */
const RESERVED_MEMBER_NAMES: ReadonlySet<string> = new Set(['name', 'version', 'members', 'constructor', 'prototype', 'toString', 'valueOf', 'hasOwnProperty']);

/** A request of a service: what `method()` returns, before `defineService` names it. */
export interface MethodSpec<P extends z.ZodType = z.ZodType, R extends z.ZodType = z.ZodType> {
  readonly kind: 'method';
  /** Validates the params, on the callee's side. Its output is what the handler gets. */
  readonly params: P;
  /** Validates the result, on the caller's side. Its output is what the call resolves with. */
  readonly result: R;
  /**
   * Running it twice has the effect of running it once (or the callee deduplicates by `callId`): a
   * client re-sends it after a reconnect instead of failing it. Default false.
   */
  readonly idempotent: boolean;
}

/** A notification of a service: fire-and-forget, never answered. Either side may send it. */
export interface NotificationSpec<P extends z.ZodType = z.ZodType> {
  readonly kind: 'notification';
  /** Validates the params, on the receiver's side. */
  readonly params: P;
}

/** A method of a defined service. */
export interface ServiceMethod<P extends z.ZodType = z.ZodType, R extends z.ZodType = z.ZodType> extends MethodSpec<P, R> {
  /** The service's name. */
  readonly service: string;
  /** The service's version (what a caller built against this definition expects). */
  readonly version: string;
  /** The member's name within the service (`route`). */
  readonly name: string;
  /** The wire name: `<service>.<name>` (`orchestrate.route`). */
  readonly method: string;
}

/** A notification of a defined service. */
export interface ServiceNotification<P extends z.ZodType = z.ZodType> extends NotificationSpec<P> {
  readonly service: string;
  readonly version: string;
  readonly name: string;
  /** The wire name: `<service>.<name>`. */
  readonly method: string;
}

export type AnyServiceMethod = ServiceMethod<z.ZodType, z.ZodType>;
export type AnyServiceNotification = ServiceNotification<z.ZodType>;
export type ServiceMember = AnyServiceMethod | AnyServiceNotification;

/** The members given to `defineService`: `method()`s and `notification()`s by name. */
export type ServiceMemberSpecs = Record<string, MethodSpec | NotificationSpec> & { name?: never; version?: never; members?: never };

/** What `defineService` returns: the service's name and version, and each member by its name. */
export type Service<Name extends string = string, Members extends ServiceMemberSpecs = ServiceMemberSpecs> = ServiceIdentity<Name> & {
  readonly [K in keyof Members & string]: Members[K] extends MethodSpec<infer P, infer R>
    ? ServiceMethod<P, R>
    : Members[K] extends NotificationSpec<infer P>
      ? ServiceNotification<P>
      : never;
};

export interface ServiceIdentity<Name extends string = string> {
  readonly name: Name;
  /** A semver version: callers check a peer serves a compatible one (see {@link isCompatibleVersion}). */
  readonly version: string;
  /** Every member, by wire name. */
  readonly members: ReadonlyMap<string, ServiceMember>;
}

/** Any defined service. */
export type AnyService = ServiceIdentity;

/** The params a caller passes (the schema's input). */
export type ParamsInput<M extends { params: z.ZodType }> = z.input<M['params']>;
/** The params a handler or listener gets (the schema's output). */
export type ParamsOutput<M extends { params: z.ZodType }> = z.output<M['params']>;
/** What a handler returns (the result schema's input). */
export type ResultInput<M extends AnyServiceMethod> = z.input<M['result']>;
/** What a call resolves with (the result schema's output). */
export type ResultOutput<M extends AnyServiceMethod> = z.output<M['result']>;

/** The names of a service's methods. */
export type MethodNames<S> = { [K in keyof S & string]: S[K] extends AnyServiceMethod ? K : never }[keyof S & string];
/** The names of a service's notifications. */
export type NotificationNames<S> = { [K in keyof S & string]: S[K] extends AnyServiceNotification ? K : never }[keyof S & string];

/** One handler: the validated params and the call's context in, the result (or a promise of it) out. */
export type MethodHandler<M extends AnyServiceMethod, Context> = (params: ParamsOutput<M>, context: Context) => ResultInput<M> | Promise<ResultInput<M>>;

/** A handler for every method of `S` (its notifications are listened to with `on`). */
export type ServiceHandlers<S, Context> = {
  [K in MethodNames<S>]: S[K] extends AnyServiceMethod ? MethodHandler<S[K], Context> : never;
};

/** The arguments after the method: params may be left out when the schema takes `undefined`. */
export type CallArguments<M extends AnyServiceMethod, Options> =
  undefined extends ParamsInput<M> ? [params?: ParamsInput<M>, options?: Options] : [params: ParamsInput<M>, options?: Options];

/** Declares a method of a service. */
export function method<P extends z.ZodType, R extends z.ZodType>(spec: { params: P; result: R; idempotent?: boolean }): MethodSpec<P, R> {
  return { kind: 'method', params: spec.params, result: spec.result, idempotent: spec.idempotent ?? false };
}

/** Declares a notification of a service. */
export function notification<P extends z.ZodType>(spec: { params: P }): NotificationSpec<P> {
  return { kind: 'notification', params: spec.params };
}

/**
 * Defines a service: a name, a semver version, and its methods and notifications, each reachable on
 * the wire as `<name>.<member>`. Throws a RangeError for a name, version or member name that is not
 * allowed (core lockstep/1 methods have no `.`, so they can never be taken; `$/` names are reserved
 * for the protocol).
 */
export function defineService<const Name extends string, const Members extends ServiceMemberSpecs>(
  name: Name,
  version: string,
  members: Members,
): Service<Name, Members> {
  if (!SERVICE_NAME_PATTERN.test(name)) {
    throw new RangeError(`service name ${JSON.stringify(name)}: a lowercase letter, then up to 62 of A-Z a-z 0-9 _ -`);
  }
  if (parseVersion(version) === undefined) throw new RangeError(`service ${name}: version ${JSON.stringify(version)} is not a semver version (1.2.3)`);
  const byWire = new Map<string, ServiceMember>();
  const service: Record<string, unknown> = { name, version, members: byWire };
  for (const [member, spec] of Object.entries(members) as Array<[string, MethodSpec | NotificationSpec]>) {
    if (!MEMBER_NAME_PATTERN.test(member) || RESERVED_MEMBER_NAMES.has(member)) {
      throw new RangeError(
        `service ${name}: member name ${JSON.stringify(member)} is not allowed (a letter, then A-Z a-z 0-9 _; not ${[...RESERVED_MEMBER_NAMES].join(', ')})`,
      );
    }
    if (spec?.kind !== 'method' && spec?.kind !== 'notification') throw new RangeError(`service ${name}: ${member} is neither method() nor notification()`);
    const defined = Object.freeze({ ...spec, service: name, version, name: member, method: `${name}.${member}` }) as ServiceMember;
    byWire.set(defined.method, defined);
    service[member] = defined;
  }
  return Object.freeze(service) as Service<Name, Members>;
}

/** `{name, version}` of a service, as `hello` announces it. */
export function serviceInfo(service: AnyService): { name: string; version: string } {
  return { name: service.name, version: service.version };
}

/**
 * True when a peer serving version `served` of a service can answer a caller built against version
 * `wanted`: `served` satisfies `^<wanted major>.<wanted minor>.0` — the same major (for 0.x, the same
 * minor) and at least the minor the caller knows (it may call methods added in it).
 */
export function isCompatibleVersion(served: string, wanted: string): boolean {
  const want = parseVersion(wanted);
  if (!want) return false;
  return satisfies(served, `^${want.major}.${want.minor}.0`);
}

/** True when `member` is a method (not a notification). */
export function isServiceMethod(member: ServiceMember): member is AnyServiceMethod {
  return member.kind === 'method';
}

/**
 * METHOD_NOT_FOUND for a call the peer cannot answer, found before anything is sent: the peer does not
 * serve the method's service (`served` undefined: `data.reason` `notServed`), or serves a version not
 * compatible with the caller's (`incompatibleVersion`, with both versions).
 */
export function notServedError(method: AnyServiceMethod, served: string | undefined): LockstepError {
  if (served === undefined) {
    return new LockstepError('METHOD_NOT_FOUND', `${method.method}: the peer does not serve ${method.service}`, {
      method: method.method,
      service: method.service,
      reason: 'notServed',
    });
  }
  return new LockstepError(
    'METHOD_NOT_FOUND',
    `${method.method}: the peer serves ${method.service} ${served}, not a version compatible with ${method.version}`,
    {
      method: method.method,
      service: method.service,
      reason: 'incompatibleVersion',
      served,
      wanted: method.version,
    },
  );
}
