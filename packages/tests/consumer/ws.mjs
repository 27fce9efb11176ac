// Two clients of the hub at process.argv[2] over WebSocket, one per codec, each create a task; both
// must end with the same confirmed state. Prints the result as one JSON line.
import { createClient } from '@lockstep/client';
import { tasksDomain } from '@lockstep/core';
import { msgpackCodec } from '@lockstep/core/msgpack';
import { webSocketConnector } from '@lockstep/ws';

const url = process.argv[2];
// The hub's token, as a deployed client would get it: from its environment.
const token = process.env.LOCKSTEP_TOKEN;
const json = createClient({ connect: webSocketConnector(url, { token }), clientId: 'node-json' });
const msgpack = createClient({ connect: webSocketConnector(url, { codec: msgpackCodec, token }), codec: msgpackCodec, clientId: 'node-msgpack' });
const streams = [json.stream(tasksDomain, 'ws-smoke'), msgpack.stream(tasksDomain, 'ws-smoke')];

await Promise.all([
  streams[0].dispatch({ type: 'task.create', payload: { id: 'from-json', title: 'over JSON' } }),
  streams[1].dispatch({ type: 'task.create', payload: { id: 'from-msgpack', title: 'over msgpack' } }),
]);
await Promise.all(streams.map((stream) => stream.waitFor(2)));
await Promise.all([json.whenIdle(), msgpack.whenIdle()]);
console.log(
  JSON.stringify({
    clients: streams.map((stream) => ({ ...stream.confirmed, view: stream.getSnapshot(), status: stream.getStatus().status })),
  }),
);
json.close();
msgpack.close();
