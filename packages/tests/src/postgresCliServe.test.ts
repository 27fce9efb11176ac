import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createClient } from '@lockstep/client';
import { tasksDomain } from '@lockstep/core';
import { describePostgres } from '@lockstep/postgres/testing';
import { webSocketConnector } from '@lockstep/ws';
import { afterEach, expect, it } from 'vitest';
import { SERVE_TOKEN, serveEnv } from './serveEnv.js';

/** `lockstep serve --store postgres://…`, run as users run it: two processes on one schema. */
const require = createRequire(import.meta.url);
const TSX = pathToFileURL(require.resolve('tsx')).href;
const MAIN = fileURLToPath(new URL('../../cli/src/main.ts', import.meta.url));

const children = new Set<ChildProcessWithoutNullStreams>();
afterEach(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  children.clear();
});

function serve(store: string) {
  const child = spawn(process.execPath, ['--conditions=lockstep-source', '--import', TSX, MAIN, 'serve', '--port', '0', '--store', store], {
    stdio: 'pipe',
    env: serveEnv(),
  });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const ready = new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = /listening on (ws:\/\/\S+)/.exec(stdout);
      if (match) resolve(match[1]!);
    });
    void exited.then((code) => reject(new Error(`lockstep serve exited (${code}) before listening: ${stdout}${stderr}`)));
  });
  // Awaited by the cases that expect a hub; the others expect it to fail.
  ready.catch(() => {});
  return { child, exited, ready, output: () => ({ stdout, stderr }) };
}

describePostgres('lockstep serve --store postgres://…', (db) => {
  it('runs two hubs on one schema: a command sent to one shows on the other; SIGINT stops each cleanly', async () => {
    const schema = db.schema();
    const store = `${db.url}${db.url.includes('?') ? '&' : '?'}schema=${schema}`;
    const [a, b] = [serve(store), serve(store)];
    const [urlA, urlB] = await Promise.all([a.ready, b.ready]);
    expect(a.output().stdout).toContain(`schema=${schema}`);
    const onA = createClient({ connect: webSocketConnector(urlA, { token: SERVE_TOKEN }), backoff: { initialMs: 50, maxMs: 200 } });
    const onB = createClient({ connect: webSocketConnector(urlB, { token: SERVE_TOKEN }), backoff: { initialMs: 50, maxMs: 200 } });
    const boardA = onA.stream(tasksDomain, 'proj_1');
    const boardB = onB.stream(tasksDomain, 'proj_1');
    await onB.whenIdle();
    await boardA.dispatch({ type: 'task.create', payload: { id: 'task_1', title: 'Written through hub a' } });
    await boardB.waitFor(1);
    expect(boardB.getSnapshot().tasks['task_1']?.title).toBe('Written through hub a');
    await boardB.dispatch({ type: 'task.update', payload: { id: 'task_1', status: 'completed' } });
    await boardA.waitFor(2);
    expect(boardA.getSnapshot().tasks['task_1']?.status).toBe('completed');
    onA.close();
    onB.close();
    a.child.kill('SIGINT');
    b.child.kill('SIGINT');
    expect(await a.exited).toBe(0);
    expect(await b.exited).toBe(0);
    const rows = await db.sql<{ head: string }>(`SELECT head FROM ${schema}.heads WHERE stream = $1`, ['tasks/proj_1']);
    expect(rows).toEqual([{ head: '2' }]);
  });

  it('exits 1 with the reason when the database cannot be reached', async () => {
    const run = serve('postgres://nobody@127.0.0.1:1/none?schema=x');
    expect(await run.exited).toBe(1);
    expect(run.output().stderr).toMatch(/lockstep: .*ECONNREFUSED/);
  });
});
