// A client whose stdin/stdout carry lockstep/1 to the hub in its parent (stdio.mjs). It creates a
// task, waits until it sees two, and reports its confirmed state on stderr as `RESULT <json>`.
import { createClient } from '@lockstep/client';
import { tasksDomain } from '@lockstep/core';
import { createStdioTransport } from '@lockstep/stdio';

const name = process.argv[2];
const client = createClient({ connect: () => createStdioTransport({ input: process.stdin, output: process.stdout }), clientId: name });
const board = client.stream(tasksDomain, 'stdio-smoke');
await board.dispatch({ type: 'task.create', payload: { id: `from-${name}`, title: `from ${name}` } });
await new Promise((resolve) => {
  board.state$.subscribe((state) => {
    if (Object.keys(state.tasks).length >= 2) resolve();
  });
});
await client.whenIdle();
process.stderr.write(`RESULT ${JSON.stringify(board.confirmed)}\n`);
client.close();
process.exit(0);
