import { LockstepError, type WireError } from './errors.js';
import type { AnyServiceMethod } from './service.js';

/** A service call awaiting its answer, as both callers (the client, a hub's peer) keep it. */
export interface AwaitedCall {
  readonly method: AnyServiceMethod;
  resolve(result: unknown): void;
  reject(error: LockstepError): void;
}

/**
 * Settles `call` with its answer: rejects with the wire error, or resolves with the result as the
 * method's result schema parses it — a result that does not match rejects with INTERNAL_ERROR
 * (`reason: "invalidResult"`, the issues in `data`). `answerer` names the other side in that message.
 */
export function settleCall(call: AwaitedCall, answer: { result?: unknown; error?: WireError | undefined }, answerer: 'hub' | 'client'): void {
  if (answer.error !== undefined) {
    call.reject(LockstepError.fromWire(answer.error));
    return;
  }
  const parsed = call.method.result.safeParse(answer.result);
  if (parsed.success) call.resolve(parsed.data);
  else
    call.reject(
      new LockstepError('INTERNAL_ERROR', `${call.method.method}: the ${answerer}'s result does not match the result schema`, {
        reason: 'invalidResult',
        issues: parsed.error.issues,
      }),
    );
}

/** The error of a call its caller aborted (its `signal`). */
export function cancelledCall(method: AnyServiceMethod): LockstepError {
  return new LockstepError('CANCELLED', `${method.method}: cancelled by the caller`, { method: method.method });
}
