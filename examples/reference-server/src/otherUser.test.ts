import { spawn, spawnSync } from 'node:child_process';
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';
import { call, until } from './testing.js';

/**
 * Issue 17's "another local user": the real server process (`pnpm start`'s command) runs as this
 * user with its defaults — a generated token, the file store — and a plain Node script runs as Unix
 * user `nobody` on the same machine. Without the token that script can read nothing (the token file,
 * the token announced for local clients, the data directory and every file in it) and change nothing
 * (REST, Server-Sent Events and the WebSocket all answer 401); given the token, it is served.
 */

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));
const inCi = Boolean(process.env['CI']);

/** Whether this process can run a program as `nobody` (root, setpriv, the user and group exist). */
function canRunAsNobody(): boolean {
  if (process.getuid?.() !== 0) return false;
  const probe = spawnSync(
    'setpriv',
    ['--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, '-e', 'process.exit(process.getuid() === 0 ? 1 : 0)'],
    { stdio: 'ignore' },
  );
  return probe.status === 0;
}

/**
 * What runs as `nobody`: Node built-ins only. Every file access reports its error code ('ok' when
 * it worked); every request its status (a WebSocket upgrade: 101 when it was accepted).
 */
const PROBE = String.raw`import { readFileSync, readdirSync } from 'node:fs';
import { request } from 'node:http';

const { PROBE_URL: url, PROBE_DATA: data, PROBE_RUNTIME_TOKEN: runtimeToken, PROBE_FILES: files, PROBE_TOKEN: token, PROBE_PID: pid } = process.env;

const access = (what) => {
  try {
    what();
    return 'ok';
  } catch (error) {
    return error.code ?? String(error);
  }
};

const call = (method, path, { headers = {}, body } = {}) =>
  new Promise((resolve) => {
    const req = request(url + path, { method, headers: { Connection: 'close', ...(body !== undefined && { 'Content-Type': 'application/json' }), ...headers } }, (res) => {
      // An event stream stays open: its status is the answer.
      if (String(res.headers['content-type']).startsWith('text/event-stream')) {
        resolve({ status: res.statusCode, text: '' });
        req.destroy();
        return;
      }
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode, text }));
    });
    req.on('error', (error) => resolve({ status: 0, text: String(error) }));
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });

const upgrade = (headers = {}) =>
  new Promise((resolve) => {
    const req = request(url + '/lockstep', {
      headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Protocol': 'lockstep.v1.json', ...headers },
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve(res.statusCode);
    });
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('error', (error) => resolve(String(error)));
    req.end();
  });

const status = async (...args) => (await call(...args)).status;
const bearer = { Authorization: 'Bearer ' + token };
const created = await call('POST', '/api/tasks', { headers: bearer, body: { title: 'from nobody, with the token' } });

const result = {
  uid: process.getuid(),
  files: {
    token: access(() => readFileSync(data + '/token')),
    runtimeToken: access(() => readFileSync(runtimeToken)),
    listData: access(() => readdirSync(data)),
    each: Object.fromEntries(JSON.parse(files).map((file) => [file, access(() => readFileSync(file))])),
    // The server process: its environment is private; its command line is public and has no token.
    environ: access(() => readFileSync('/proc/' + pid + '/environ')),
    commandLineHasToken: readFileSync('/proc/' + pid + '/cmdline', 'utf8').includes(token),
  },
  anonymous: {
    getTasks: await status('GET', '/api/tasks'),
    postTasks: await status('POST', '/api/tasks', { body: { title: 'nobody was here' } }),
    postTasksEmpty: await status('POST', '/api/tasks'),
    postSessions: await status('POST', '/api/sessions', { body: { name: 'a shell for nobody' } }),
    sse: await status('GET', '/api/streams/tasks/default', { headers: { Accept: 'text/event-stream' } }),
    webSocket: await upgrade(),
    wrongToken: await status('GET', '/api/tasks', { headers: { Authorization: 'Bearer ' + 'x'.repeat(43) } }),
    webSocketWrongToken: await upgrade({ Authorization: 'Bearer ' + 'x'.repeat(43) }),
  },
  withToken: {
    postTasks: created.status,
    getTasks: await status('GET', '/api/tasks', { headers: bearer }),
    listed: JSON.parse((await call('GET', '/api/tasks', { headers: bearer })).text).tasks.map((task) => task.title),
    sse: await status('GET', '/api/streams/tasks/default', { headers: { ...bearer, Accept: 'text/event-stream' } }),
    webSocket: await upgrade(bearer),
  },
};
console.log(JSON.stringify(result));
`;

/** Every file and directory under `dir` (not `dir` itself), recursively. */
async function walk(dir: string): Promise<Array<{ path: string; directory: boolean }>> {
  const found: Array<{ path: string; directory: boolean }> = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    found.push({ path, directory: entry.isDirectory() });
    if (entry.isDirectory()) found.push(...(await walk(path)));
  }
  return found;
}

const mode = async (path: string) => (await stat(path)).mode & 0o777;

describe('another local user', () => {
  const allowed = canRunAsNobody();
  if (!allowed && !inCi) console.warn('[otherUser.test] skipped: needs root, setpriv and the user nobody. In CI this is a failure.');

  it.skipIf(!allowed && !inCi)('as nobody, without the token, reads nothing and changes nothing; with the token, is served', async () => {
    if (!allowed) throw new Error('CI needs to run this test as root with setpriv and the user nobody');
    const root = await mkdtemp(join(tmpdir(), 'lockstep-other-user-'));
    onTestFinished(() => rm(root, { recursive: true, force: true }));
    // nobody may pass through the test's directory (to reach the script), no further.
    await chmod(root, 0o755);
    const data = join(root, 'data');
    const runtimeDir = join(root, 'run');

    // The server as `pnpm start` runs it, with its defaults: a generated token, the file store, shells on.
    const { LOCKSTEP_TOKEN: _, ...env } = process.env;
    const server = spawn(process.execPath, ['--conditions=lockstep-source', '--import', 'tsx', MAIN, '--port', '0', '--data', data], {
      cwd: ROOT,
      env: { ...env, LOCKSTEP_RUNTIME_DIR: runtimeDir, SHELL: '/bin/sh', HOME: root },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const output = { stdout: '', stderr: '' };
    server.stdout.setEncoding('utf8').on('data', (chunk: string) => (output.stdout += chunk));
    server.stderr.setEncoding('utf8').on('data', (chunk: string) => (output.stderr += chunk));
    const exited = new Promise<number | null>((resolve) => server.once('exit', (code) => resolve(code)));
    onTestFinished(async () => {
      if (server.exitCode !== null || server.signalCode !== null) return;
      server.kill('SIGTERM');
      const stopped = await Promise.race([exited.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 10_000))]);
      if (!stopped) server.kill('SIGKILL');
    });
    const readyUrl = () => /Lockstep reference server on (http:\/\/\S+) /.exec(output.stdout)?.[1];
    await until(() => readyUrl() !== undefined || server.exitCode !== null, 'the ready line', 60_000);
    const url = readyUrl();
    if (url === undefined) throw new Error(`the server did not start:\n${output.stdout}\n${output.stderr}`);
    const port = new URL(url).port;

    // This user (the server's) reads the token, and writes a task so the store has files.
    const token = (await readFile(join(data, 'token'), 'utf8')).trim();
    const bearer = { Authorization: `Bearer ${token}` };
    expect((await call(url, 'POST', '/api/tasks', { body: { title: 'before nobody came' }, headers: bearer })).status).toBe(201);
    const runtimeToken = join(runtimeDir, 'servers', `${port}.token`);
    expect((await readFile(runtimeToken, 'utf8')).trim()).toBe(token);

    // The modes: the data directory 0700, every directory in it 0700, every file 0600; the token too.
    expect((await mode(data)).toString(8)).toBe('700');
    expect((await mode(join(data, 'token'))).toString(8)).toBe('600');
    const entries = await walk(data);
    expect(entries.filter((entry) => !entry.directory).map((entry) => entry.path)).toContain(join(data, 'token'));
    expect(entries.filter((entry) => !entry.directory).length).toBeGreaterThan(1);
    const modes = Object.fromEntries(await Promise.all(entries.map(async (entry) => [entry.path, (await mode(entry.path)).toString(8)] as const)));
    const expected = Object.fromEntries(entries.map((entry) => [entry.path, entry.directory ? '700' : '600']));
    expect(modes).toEqual(expected);
    expect((await mode(runtimeToken)).toString(8)).toBe('600');
    expect((await mode(join(runtimeDir, 'servers'))).toString(8)).toBe('700');

    // The script, as nobody.
    const script = join(root, 'probe.mjs');
    await writeFile(script, PROBE, { mode: 0o644 });
    await chmod(script, 0o644);
    const files = entries.filter((entry) => !entry.directory).map((entry) => entry.path);
    const probe = spawn('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, script], {
      cwd: root,
      env: {
        PATH: process.env['PATH'] ?? '/usr/bin:/bin',
        PROBE_URL: url,
        PROBE_DATA: data,
        PROBE_RUNTIME_TOKEN: runtimeToken,
        PROBE_FILES: JSON.stringify(files),
        PROBE_TOKEN: token,
        PROBE_PID: String(server.pid),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    onTestFinished(() => {
      if (probe.exitCode === null && probe.signalCode === null) probe.kill('SIGKILL');
    });
    let probeOut = '';
    let probeErr = '';
    probe.stdout.setEncoding('utf8').on('data', (chunk: string) => (probeOut += chunk));
    probe.stderr.setEncoding('utf8').on('data', (chunk: string) => (probeErr += chunk));
    const code = await new Promise<number | null>((resolve) => probe.once('exit', (exitCode) => resolve(exitCode)));
    expect(code, `${probeOut}\n${probeErr}`).toBe(0);
    const result = JSON.parse(probeOut.trim().split('\n').at(-1)!);

    expect(result.uid).toBe(65534);
    // Nothing can be read: not the token, not the announced token, not the store.
    expect(result.files.token).toBe('EACCES');
    expect(result.files.runtimeToken).toBe('EACCES');
    expect(result.files.listData).toBe('EACCES');
    expect(result.files.each).toEqual(Object.fromEntries(files.map((file) => [file, 'EACCES'])));
    expect(result.files.environ).toBe('EACCES');
    expect(result.files.commandLineHasToken).toBe(false);
    // Nothing can be done without the token, over any entry.
    expect(result.anonymous).toEqual({
      getTasks: 401,
      postTasks: 401,
      postTasksEmpty: 401,
      postSessions: 401,
      sse: 401,
      webSocket: 401,
      wrongToken: 401,
      webSocketWrongToken: 401,
    });
    // With the token, the same script is served.
    expect(result.withToken).toEqual({
      postTasks: 201,
      getTasks: 200,
      listed: expect.arrayContaining(['before nobody came', 'from nobody, with the token']),
      sse: 200,
      webSocket: 101,
    });

    // What the server holds: the two tasks written with the token, no session (so no shell).
    const tasks = await call(url, 'GET', '/api/tasks', { headers: bearer });
    expect(tasks.json.tasks.map((task: { title: string }) => task.title).sort()).toEqual(['before nobody came', 'from nobody, with the token']);
    const sessions = await call(url, 'GET', '/api/sessions', { headers: bearer });
    expect(sessions.json.sessions).toEqual([]);

    server.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
