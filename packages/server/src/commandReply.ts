import type { LockstepError, protocol } from '@lockstep/core';
import type { QueuedCommand } from './streamHost.js';

/** What a command reply needs of the connection the command came on. */
export interface ReplyChannel {
  /** With `eventAcks`: the client was just sent this command's events live, which stand for the ack. */
  receivedLive(result: protocol.CommandResult): boolean;
  reply(id: protocol.RequestId, result: unknown): void;
  replyError(id: protocol.RequestId, error: unknown): void;
}

/** A command from the client on its way through the stream's pipeline, and whom to tell the answer. */
export class CommandReply implements QueuedCommand {
  readonly id: string;
  readonly type: string;
  readonly payload: unknown;
  readonly expectedVersion: number | undefined;
  readonly #explicitAck: boolean;

  constructor(
    private readonly channel: ReplyChannel,
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
    if (inBroadcast && !this.#explicitAck && this.channel.receivedLive(result)) return;
    this.channel.reply(this.requestId, result);
  }

  reject(error: LockstepError): void {
    this.channel.replyError(this.requestId, error);
  }
}
