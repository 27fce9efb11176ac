import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createClient } from '@lockstep/client';
import { tasksDomain } from '@lockstep/core';
import { createSidecar } from '@lockstep/stdio';
import { webSocketConnector } from '@lockstep/ws';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { CLIENT_SUBCOMMANDS } from '../../cli/src/clientArgs.js';
import { REPAIR_HELP, SERVE_HELP, USAGE } from '../../cli/src/run.js';
import { SERVE_TOKEN, serveEnv } from './serveEnv.js';
import { RawPeer } from './wsPeer.js';

/**
 * `lockstep` as the installed program people run from the repository root: the bin pnpm links into
 * node_modules/.bin, `pnpm exec lockstep` and `pnpm lockstep` — real processes, real signals, and
 * stdout checked byte for byte (it must carry the program's output only).
 */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = join(ROOT, 'node_modules', '.bin', 'lockstep');

/** The documented ways to run the command, as [program, arguments before the command's own]. */
const FORMS = {
  'pnpm lockstep': ['pnpm', ['lockstep']],
  'pnpm exec lockstep': ['pnpm', ['exec', 'lockstep']],
  'node_modules/.bin/lockstep': [BIN, []],
} as const satisfies Record<string, readonly [string, readonly string[]]>;
type Form = keyof typeof FORMS;

const scratch = mkdtempSync(join(tmpdir(), 'lockstep-cli-program-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const children = new Set<ChildProcessWithoutNullStreams>();
afterEach(() => {
  // Each command runs in a process group of its own (detached): whatever is left of it goes.
  for (const child of children) {
    for (const pid of groupMembers(child.pid!)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // exited meanwhile
      }
    }
  }
  children.clear();
});

/** Starts `lockstep <args>` the way `form` says, from the repository root, in a process group of its own. */
function lockstep(form: Form, args: readonly string[], env: NodeJS.ProcessEnv = serveEnv()) {
  const [program, before] = FORMS[form];
  const child = spawn(program, [...before, ...args], { cwd: ROOT, env, stdio: 'pipe', detached: true });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  // 'close': every process holding the output pipes has exited, not only the one spawned.
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => resolve({ code, signal })),
  );
  const line = (pattern: RegExp) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const look = () => {
        const match = stdout.match(pattern);
        if (match) resolve(match);
      };
      child.stdout.on('data', look);
      look();
      void closed.then(() => reject(new Error(`lockstep exited before printing ${pattern}: ${stdout}${stderr}`)));
    });
  return { child, closed, line, output: () => ({ stdout, stderr }), done: async () => ({ ...(await closed), stdout, stderr }) };
}

/** The live processes of a process group (zombies count as gone), from /proc. */
function groupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // pid (comm) state ppid pgrp …: comm may hold spaces and parentheses, so read after the last ')'.
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(pgrp) === pgid && state !== 'Z') members.push(Number(entry));
  }
  return members;
}

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}

/** Waits until `check` answers true, polling; false if it does not within `ms`. */
async function eventually(check: () => boolean, ms: number, everyMs = 50): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
  return true;
}

const LISTENING = /listening on (ws:\/\/127\.0\.0\.1:\d+)/;

describe('the lockstep program', () => {
  it('is installed as node_modules/.bin/lockstep, pointing at the package bin', () => {
    expect(existsSync(BIN)).toBe(true);
    const manifest = JSON.parse(readFileSync(join(ROOT, 'packages', 'cli', 'package.json'), 'utf8')) as { bin: Record<string, string> };
    expect(manifest.bin).toEqual({ lockstep: './bin/lockstep.js' });
    expect(readFileSync(BIN, 'utf8')).toContain('@lockstep/cli/bin/lockstep.js');
  });

  it.each(Object.keys(FORMS) as Form[])('%s --help prints exactly the usage on stdout, nothing else', async (form) => {
    const { code, stdout } = await lockstep(form, ['--help']).done();
    expect(code).toBe(0);
    expect(stdout).toBe(`${USAGE}\n`);
  });

  it('has --help on every command and subcommand', async () => {
    const helps: Array<[string[], string]> = [
      [['serve'], SERVE_HELP],
      [['repair'], REPAIR_HELP],
      [['help'], USAGE],
    ];
    const commands: string[][] = [...new Set(CLIENT_SUBCOMMANDS.map((subcommand) => subcommand.words[0]!))].map((group) => [group]);
    for (const subcommand of CLIENT_SUBCOMMANDS) if (subcommand.words.length > 1) commands.push([...subcommand.words]);
    const runs = await Promise.all([
      ...helps.map(async ([words, text]) => ({ words, expected: `${text}\n`, run: await lockstep('node_modules/.bin/lockstep', [...words, '--help']).done() })),
      ...commands.map(async (words) => ({ words, expected: undefined, run: await lockstep('node_modules/.bin/lockstep', [...words, '--help']).done() })),
      // `lockstep help serve` is `lockstep serve --help`.
      (async () => ({ words: ['help', 'serve'], expected: `${SERVE_HELP}\n`, run: await lockstep('node_modules/.bin/lockstep', ['help', 'serve']).done() }))(),
    ]);
    expect(runs.length).toBeGreaterThan(15);
    for (const { words, expected, run } of runs) {
      expect(run.code, words.join(' ')).toBe(0);
      expect(run.stderr, words.join(' ')).toBe('');
      if (expected !== undefined) expect(run.stdout, words.join(' ')).toBe(expected);
      else expect(run.stdout, words.join(' ')).toMatch(new RegExp(`^Usage: lockstep ${words.join(' ')} `));
    }
  });

  it('keeps stdout for the output under pnpm: an id to capture, JSON to parse, NDJSON to follow', async () => {
    const hub = lockstep('node_modules/.bin/lockstep', ['serve', '--port', '0']);
    const [, url] = await hub.line(LISTENING);
    const env = serveEnv({ LOCKSTEP_SERVER: url! });

    // What `pnpm lockstep watch tasks/default --json | jq` reads. It prints what is committed once it
    // is in sync: commit until it has printed something, so it is.
    const watch = lockstep('pnpm lockstep', ['watch', 'tasks/default', '--json'], env);
    const writer = createClient({ connect: webSocketConnector(url!, { token: SERVE_TOKEN }) });
    const board = writer.stream(tasksDomain, 'default');
    const following = await eventually(
      () => {
        if (watch.output().stdout === '') void board.dispatch({ type: 'task.create', payload: { title: 'Warm-up' } });
        return watch.output().stdout !== '';
      },
      30_000,
      300,
    );
    writer.close();
    expect(following, watch.output().stderr).toBe(true);

    // `id=$(pnpm lockstep task create "Ship it")`
    const created = await lockstep('pnpm lockstep', ['task', 'create', 'Ship it'], env).done();
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toMatch(/^task_[\w-]+\n$/);
    const id = created.stdout.trim();

    const listed = await lockstep('pnpm lockstep', ['task', 'list', '--json'], env).done();
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout)).toMatchObject({ tasks: expect.arrayContaining([expect.objectContaining({ id, title: 'Ship it' })]) });

    await watch.line(new RegExp(id));
    watch.child.kill('SIGINT');
    await watch.closed;
    const lines = watch.output().stdout.trimEnd().split('\n');
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(() => JSON.parse(line), line).not.toThrow();
    expect(lines.map((line) => JSON.parse(line))).toContainEqual(expect.objectContaining({ type: 'task.created' }));
  });

  it('serves LSP frames from the first byte of stdout under `pnpm lockstep serve --stdio`', async () => {
    const sidecar = lockstep('pnpm lockstep', ['serve', '--stdio']);
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'hello', params: { protocol: 1, clientId: 'lsp-host' } });
    sidecar.child.stdin.write(`Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    await eventually(() => /\r\n\r\n/.test(sidecar.output().stdout), 30_000);
    const { stdout } = sidecar.output();
    const header = /^Content-Length: (\d+)\r\n\r\n/.exec(stdout);
    expect(header, JSON.stringify(stdout.slice(0, 200))).not.toBeNull();
    await eventually(() => Buffer.byteLength(sidecar.output().stdout) >= header![0].length + Number(header![1]), 10_000);
    const reply = JSON.parse(
      Buffer.from(sidecar.output().stdout)
        .subarray(header![0].length, header![0].length + Number(header![1]))
        .toString(),
    );
    expect(reply).toMatchObject({ jsonrpc: '2.0', id: 1, result: { protocol: 1 } });
    // The host went away: stdin ends, the hub stops, every process of it exits.
    sidecar.child.stdin.end();
    expect((await sidecar.closed).code).toBe(0);
    expect(sidecar.output().stderr).toContain('stopping (stdin closed)');
  });

  it('runs as a sidecar host spawns it: `pnpm lockstep serve --stdio` behind createSidecar', async () => {
    let stderr = '';
    const sidecar = createSidecar({ command: 'pnpm', args: ['lockstep', 'serve', '--stdio'], cwd: ROOT, stderr: (text) => (stderr += text) });
    const client = createClient({ connect: sidecar.connect });
    try {
      const board = client.stream(tasksDomain, 'proj_1');
      for (let i = 0; i < 5; i++) await board.dispatch({ type: 'task.create', payload: { title: `Task ${i}` } });
      expect(board.version).toBe(5);
      expect(stderr).toContain('serving lockstep/1 on stdio');
    } finally {
      client.close();
      await sidecar.close();
    }
  });
});

describe.each([
  { form: 'pnpm lockstep' as const, signal: 'SIGTERM' as const },
  { form: 'node_modules/.bin/lockstep' as const, signal: 'SIGINT' as const },
])('$signal to `$form serve`', ({ form, signal }) => {
  it('stops the hub within its close timeout while a client is mid-resync, leaves no process, and frees the store', async () => {
    const dir = join(scratch, `store-${form.replace(/\W+/g, '-')}`);
    const stream = 'tasks/resync';
    const args = ['serve', '--port', '0', '--store', `file:${dir}`, '--close-timeout', '1', '--rate-limit', 'off'];
    const server = lockstep(form, args);
    const [, url] = await server.line(LISTENING);

    // A stream long enough to take several catch-up pages (1,000 events each).
    const writer = createClient({ connect: webSocketConnector(url!, { token: SERVE_TOKEN }) });
    const board = writer.stream(tasksDomain, 'resync');
    await Promise.all(Array.from({ length: 2_500 }, (_, i) => board.dispatch({ type: 'task.create', payload: { title: `Task ${i} ${'x'.repeat(200)}` } })));
    writer.close();

    // A client resyncing from the start that stops reading after its first frame: the hub cannot
    // finish sending it the catch-up, nor close its socket politely.
    const slow = await RawPeer.connect(url!, ['lockstep.v1.json'], { headers: { Authorization: `Bearer ${SERVE_TOKEN}` } });
    await slow.call('hello', { protocol: 1, clientId: 'slow-reader' });
    slow.request('subscribe', { stream, since: 0 });
    await slow.next();
    slow.socket.pause();

    const group = server.child.pid!;
    const members = groupMembers(group);
    expect(members.map(commandLine).some((line) => line.includes('@lockstep/cli/bin/lockstep.js'))).toBe(true);

    server.child.kill(signal);
    // The hub gets its close timeout (1 s) and a grace period (5 s); a few seconds more for slow CI.
    expect(await eventually(() => groupMembers(group).length === 0, 12_000)).toBe(true);
    await server.closed;
    // pnpm passes the signal on as SIGTERM; the bin receives it as sent.
    expect(server.output().stdout).toContain(`stopping (${form === 'pnpm lockstep' ? 'SIGTERM' : signal})`);
    expect(server.output().stderr).not.toContain('did not finish stopping');

    // The directory lock went with the hub: a second hub opens the store at once and has every event.
    const next = lockstep('node_modules/.bin/lockstep', ['serve', '--port', '0', '--store', `file:${dir}`]);
    const [, nextUrl] = await next.line(LISTENING);
    const reader = createClient({ connect: webSocketConnector(nextUrl!, { token: SERVE_TOKEN }) });
    const replayed = reader.stream(tasksDomain, 'resync');
    await eventually(() => replayed.version === 2_500, 30_000);
    expect(replayed.version).toBe(2_500);
    reader.close();
    next.child.kill('SIGTERM');
    expect((await next.closed).code).toBe(0);
  });
});

describe('the checkout launcher (bin/lockstep.js, bin/bundle.js)', () => {
  it('lists what the bundle was made from, every file of it present', () => {
    const manifest = JSON.parse(readFileSync(join(ROOT, 'packages/cli/node_modules/.cache/lockstep-bin/manifest.json'), 'utf8')) as { inputs: string[] };
    expect(manifest.inputs).toEqual(
      expect.arrayContaining(['src/main.ts', 'src/run.ts', '../core/src/index.ts', '../server/src/index.ts', '../../tsconfig.base.json', 'bin/build.js']),
    );
    for (const input of manifest.inputs) expect(existsSync(join(ROOT, 'packages/cli', input)), input).toBe(true);
  });

  it('calls a bundle stale when an input is newer than its build, gone, or the bundle is missing', async () => {
    // The real bundle.js, in a stand-in package folder: its paths are relative to its own location.
    const cli = join(scratch, 'cli');
    mkdirSync(join(cli, 'bin'), { recursive: true });
    mkdirSync(join(cli, 'src'), { recursive: true });
    cpSync(join(ROOT, 'packages/cli/bin/bundle.js'), join(cli, 'bin/bundle.js'));
    const bundleDir = join(cli, 'node_modules/.cache/lockstep-bin');
    const { staleReason } = (await import(pathToFileURL(join(cli, 'bin/bundle.js')).href)) as { staleReason(): string | undefined };
    expect(staleReason()).toBe('no bundle yet');

    const builtAt = Date.now() - 60_000;
    const source = join(cli, 'src/main.ts');
    writeFileSync(source, '');
    utimesSync(source, new Date(builtAt - 1_000), new Date(builtAt - 1_000));
    mkdirSync(bundleDir, { recursive: true });
    writeFileSync(join(bundleDir, 'lockstep.js'), '');
    writeFileSync(join(bundleDir, 'manifest.json'), JSON.stringify({ startedAt: builtAt, inputs: ['src/main.ts'] }));
    expect(staleReason()).toBeUndefined();

    utimesSync(source, new Date(), new Date());
    expect(staleReason()).toBe('src/main.ts changed');
    rmSync(source);
    expect(staleReason()).toBe('src/main.ts is gone');
  });
});
