import { LockstepError, protocol } from '@lockstep/core';
import { CommandReply } from './commandReply.js';
import type { Connection } from './connection.js';
import { afterHello } from './handshake.js';
import { replyError, sendError } from './outbox.js';

/**
 * A `command` request, one path whether or not `hello` was still being checked when it came:
 * envelope parsed, `authorize` for `write` (awaited only when the hub has the hook), the stream
 * admitted (`newStreamsPerMinute`), then queued in its stream's pipeline with a {@link CommandReply}
 * that hears the answer. For a greeted connection; one pipelined behind `hello` comes through
 * {@link commandBeforeHello}, which waits for it and then takes this same path.
 */
export function command(connection: Connection, id: protocol.RequestId, params: unknown): void {
  const parsed = protocol.parseCommandParams(params);
  if (!parsed.success) {
    sendError(connection, id, new LockstepError('INVALID_PARAMS', 'invalid params', { issues: parsed.error.issues }));
    return;
  }
  const { stream } = parsed.data;
  const reply = new CommandReply(connection, id, parsed.data, connection.clientId!);
  const { host } = connection;
  if (!host.checksAccess) {
    enqueue(connection, stream, reply);
    return;
  }
  host.authorize(connection.identity, stream, 'write').then(
    () => enqueue(connection, stream, reply),
    (error: unknown) => replyError(connection, id, error),
  );
}

/**
 * A command that came before the connection was greeted: once the `hello` being checked is answered
 * it takes {@link command}'s path; without one (or refused) it is answered HANDSHAKE_REQUIRED.
 */
export function commandBeforeHello(connection: Connection, id: protocol.RequestId, params: unknown): void {
  afterHello(connection, protocol.Methods.command).then(
    () => command(connection, id, params),
    (error: unknown) => {
      replyError(connection, id, error);
      if (connection.closeAfterReply !== undefined) connection.close(connection.closeAfterReply);
    },
  );
}

function enqueue(connection: Connection, stream: string, reply: CommandReply): void {
  try {
    connection.admitStream(stream);
  } catch (error) {
    reply.reject(LockstepError.from(error));
    return;
  }
  connection.host.enqueue(stream, reply);
}
