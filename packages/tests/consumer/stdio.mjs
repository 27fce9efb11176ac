// lockstep/1 over stdio, twice:
// 1. a hub in this process and two client processes (stdioClient.mjs) talking over their stdio;
// 2. a sidecar host: `lockstep serve --stdio` (the installed bin) spawned by createSidecar, and a client.
// Prints the result as one JSON line.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createClient } from '@lockstep/client';
import { builtInDomains, tasksDomain } from '@lockstep/core';
import { Hub } from '@lockstep/server';
import { createSidecar, createStdioTransport } from '@lockstep/stdio';

const hub = new Hub({ domains: builtInDomains });
const clientScript = fileURLToPath(new URL('./stdioClient.mjs', import.meta.url));
const reports = await Promise.all(
  ['one', 'two'].map(
    (name) =>
      new Promise((resolve, reject) => {
        const child = spawn(process.execPath, [clientScript, name], { stdio: ['pipe', 'pipe', 'pipe'] });
        hub.accept(createStdioTransport({ input: child.stdout, output: child.stdin }));
        let stderr = '';
        child.stderr.on('data', (chunk) => (stderr += chunk));
        child.on('error', reject);
        child.on('exit', (code) => {
          const line = stderr.split('\n').find((candidate) => candidate.startsWith('RESULT '));
          if (code === 0 && line) resolve(JSON.parse(line.slice('RESULT '.length)));
          else reject(new Error(`stdio client ${name} exited with ${code}: ${stderr}`));
        });
      }),
  ),
);
const hubState = await hub.read('tasks/stdio-smoke');
await hub.close();

const sidecar = createSidecar({ command: fileURLToPath(new URL('./node_modules/.bin/lockstep', import.meta.url)), args: ['serve', '--stdio'] });
const client = createClient({ connect: sidecar.connect });
const { domains } = await sidecar.negotiate();
const board = client.stream(tasksDomain, 'sidecar-smoke');
await board.dispatch({ type: 'task.create', payload: { id: 'task_1', title: 'through the sidecar' } });
const sidecarState = board.confirmed;
client.close();
await sidecar.close();

console.log(JSON.stringify({ hub: hubState, clients: reports, sidecar: { domains, ...sidecarState } }));
