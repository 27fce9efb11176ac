// node tasks.mjs URL STREAM_KEY [TITLE]: creates a task titled TITLE (if given) in tasks/STREAM_KEY on
// the hub at URL, then prints the titles of every task the hub has there, sorted, as one JSON line.
import { createClient } from '@lockstep/client';
import { tasksDomain } from '@lockstep/core';
import { webSocketConnector } from '@lockstep/ws';

const [url, key, title] = process.argv.slice(2);
const client = createClient({ connect: webSocketConnector(url, { token: process.env.LOCKSTEP_TOKEN }) });
const board = client.stream(tasksDomain, key);
if (title) await board.dispatch({ type: 'task.create', payload: { title } });
await client.whenIdle();
await board.waitFor(board.getStatus().serverVersion);
console.log(
  JSON.stringify(
    Object.values(board.confirmed.state.tasks)
      .map((task) => task.title)
      .sort(),
  ),
);
client.close();
