import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createClient } from '@lockstep/client';
import { tasksDomain } from '@lockstep/core';
import { webSocketConnector } from '@lockstep/ws';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { SERVE_TOKEN, serveEnv } from './serveEnv.js';

/** `lockstep serve --store file:DIR` and `lockstep repair`, run as users run them. */
const require = createRequire(import.meta.url);
const TSX = pathToFileURL(require.resolve('tsx')).href;
const MAIN = fileURLToPath(new URL('../../cli/src/main.ts', import.meta.url));

const root = mkdtempSync(join(tmpdir(), 'lockstep-cli-file-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const children = new Set<ChildProcessWithoutNullStreams>();
afterEach(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL');
  children.clear();
});

function lockstep(...args: string[]) {
  const child = spawn(process.execPath, ['--conditions=lockstep-source', '--import', TSX, MAIN, ...args], { stdio: 'pipe', env: serveEnv() });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = () =>
    new Promise<string>((resolve, reject) => {
      const look = () => {
        const match = /listening on (ws:\/\/127\.0\.0\.1:\d+)/.exec(stdout);
        if (match) resolve(match[1]!);
      };
      child.stdout.on('data', look);
      look();
      void exited.then(() => reject(new Error(`lockstep exited before listening: ${stdout}${stderr}`)));
    });
  return { child, exited, url, output: () => ({ stdout, stderr }) };
}

async function createTasks(url: string, titles: string[]): Promise<string[]> {
  const client = createClient({ connect: webSocketConnector(url, { token: SERVE_TOKEN }), backoff: { initialMs: 50, maxMs: 200 } });
  try {
    const board = client.stream(tasksDomain, 'proj_1');
    for (const title of titles) await board.dispatch({ type: 'task.create', payload: { title } });
    return Object.values(board.getSnapshot().tasks).map((task) => task.title);
  } finally {
    client.close();
  }
}

async function readTitles(url: string): Promise<string[]> {
  const client = createClient({ connect: webSocketConnector(url, { token: SERVE_TOKEN }), backoff: { initialMs: 50, maxMs: 200 } });
  try {
    const board = client.stream(tasksDomain, 'proj_1');
    await client.whenIdle();
    return Object.values(board.getSnapshot().tasks).map((task) => task.title);
  } finally {
    client.close();
  }
}

describe('lockstep serve --store file:DIR', () => {
  it('keeps what clients wrote across a restart, and refuses a second hub on the same directory', async () => {
    const directory = join(root, 'hub');
    const first = lockstep('serve', '--port', '0', '--store', `file:${directory}`);
    const url = await first.url();
    expect(first.output().stdout).toContain(`store: file:${directory}`);
    expect(await createTasks(url, ['one', 'two', 'three'])).toEqual(['one', 'two', 'three']);

    const second = lockstep('serve', '--port', '0', '--store', `file:${directory}`);
    expect(await second.exited).toBe(1);
    expect(second.output().stderr).toMatch(new RegExp(`lockstep: data directory ${directory} is locked by process ${first.child.pid} on `));

    first.child.kill('SIGINT');
    expect(await first.exited).toBe(0);
    expect(readdirSync(directory)).not.toContain('lock');

    const again = lockstep('serve', '--port', '0', '--store', `file:${directory}`);
    expect(await readTitles(await again.url())).toEqual(['one', 'two', 'three']);
    again.child.kill('SIGTERM');
    expect(await again.exited).toBe(0);
  });
});

describe('lockstep repair', () => {
  it('reports damage, cuts only when confirmed with --yes, and the hub starts again', async () => {
    const directory = join(root, 'damaged');
    const hub = lockstep('serve', '--port', '0', '--store', `file:${directory}`);
    await createTasks(await hub.url(), ['kept 1', 'kept 2', 'lost 3', 'lost 4']);
    const busy = lockstep('repair', directory);
    expect(await busy.exited).toBe(1);
    expect(busy.output().stderr).toMatch(/is locked by process/);
    hub.child.kill('SIGINT');
    expect(await hub.exited).toBe(0);

    const clean = lockstep('repair', directory);
    expect(await clean.exited).toBe(0);
    expect(clean.output().stdout).toContain('nothing to repair');

    // Flip a bit inside the third task's record: two whole records follow it.
    const segment = join(directory, 'log', '0000000000000001.log');
    const bytes = readFileSync(segment);
    bytes[bytes.indexOf('lost 3')]! ^= 0x02;
    writeFileSync(segment, bytes);

    const refused = lockstep('serve', '--port', '0', '--store', `file:${directory}`);
    expect(await refused.exited).toBe(1);
    expect(refused.output().stderr).toMatch(/corrupt event log: .*0000000000000001\.log at byte \d+: checksum mismatch.*lockstep repair/);

    const dry = lockstep('repair', directory);
    expect(await dry.exited).toBe(1);
    expect(dry.output().stdout).toMatch(/damage: .*0000000000000001\.log at byte \d+/);
    expect(dry.output().stdout).toMatch(/a repair cuts \d+ bytes, 1 whole records among them/);
    expect(dry.output().stdout).toContain('run again with --yes');

    const done = lockstep('repair', directory, '--yes');
    expect(await done.exited).toBe(0);
    expect(done.output().stdout).toMatch(/repaired: the cut part is kept in .*repair-/);

    const restarted = lockstep('serve', '--port', '0', '--store', `file:${directory}`);
    expect(await readTitles(await restarted.url())).toEqual(['kept 1', 'kept 2']);
    restarted.child.kill('SIGTERM');
    expect(await restarted.exited).toBe(0);
  });

  it.each([
    [['repair'], /one data directory, got none/],
    [['repair', 'a', 'b'], /one data directory/],
    [['repair', 'a', '--force'], /Unknown option/],
  ])('refuses %j with exit code 2 and the usage', async (args, message) => {
    const run = lockstep(...args);
    expect(await run.exited).toBe(2);
    expect(run.output().stderr).toMatch(message);
    expect(run.output().stderr).toContain('repair DIR [--yes]');
  });

  it('fails with exit code 1 on a directory that holds no store', async () => {
    const run = lockstep('repair', join(root, 'nothing-here'));
    expect(await run.exited).toBe(1);
    expect(run.output().stderr).toMatch(/holds no Lockstep store/);
  });
});
