import type { LockstepError, protocol } from '@lockstep/core';
import type { QueuedCommand } from '../commandPipeline.js';
import type { Connection } from './connection.js';
import { reply, replyError } from './outbox.js';

/**
 * Command replies: a command from the client on its way through its stream's pipeline, and the
 * answer it gets — the ack, the error, or nothing when the client said `eventAcks` and was sent the
 * command's events live (they stand for the ack; docs/protocol.md#acks-implied-by-events-eventacks).
 * One object per command travels through the pipeline and hears the answer, instead of a promise and
 * two handlers.
 */
export class CommandReply implements QueuedCommand {
  readonly id: string;
  readonly type: string;
  readonly payload: unknown;
  readonly expectedVersion: number | undefined;
  readonly #explicitAck: boolean;

  constructor(
    private readonly connection: Connection,
    private readonly requestId: protocol.RequestId,
    command: protocol.CommandParams,
    readonly clientId: string,
  ) {
    this.id = command.id;
    this.type = command.type;
    this.payload = command.payload;
    this.expectedVersion = command.expectedVersion;
    this.#explicitAck = command.explicitAck === true;
  }

  resolve(result: protocol.CommandResult, inBroadcast: boolean): void {
    if (inBroadcast && !this.#explicitAck && receivedLive(this.connection, result)) return;
    reply(this.connection, this.requestId, result);
  }

  reject(error: LockstepError): void {
    replyError(this.connection, this.requestId, error);
  }
}

/**
 * With `eventAcks`, true when the live broadcast that just carried this command's events was sent
 * to this connection: the client takes them for the ack, and no answer is sent. A subscription is
 * live and at or past the version only if the broadcast was written to it (a shed one is cancelled
 * on the spot); one catching up page by page is not live.
 */
export function receivedLive(connection: Connection, result: protocol.CommandResult): boolean {
  if (!connection.eventAcks) return false;
  const subscription = connection.subscriptions.get(result.stream);
  return subscription !== undefined && subscription.live && subscription.cursor >= result.version;
}
