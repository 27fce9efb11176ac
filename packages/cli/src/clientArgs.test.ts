import { describe, expect, it } from 'vitest';
import { CLIENT_SUBCOMMANDS, parseClientCommand, type ClientCommandLine, type ClientEnv } from './clientArgs.js';
import type { Operation } from './commands/spec.js';
import { DEFAULT_SERVER_URL } from './hubOptions.js';
import { UsageError } from './options.js';
import { run } from './run.js';

function parsed(argv: string[], env: ClientEnv = {}): Extract<ClientCommandLine, { operation: Operation }> {
  const line = parseClientCommand(argv, env);
  if ('help' in line) throw new Error(`expected a command, got help: ${line.help}`);
  return line;
}

/** Runs the CLI in this process; nothing here may reach a network (every case fails to parse or prints help). */
async function runCli(argv: string[], env: ClientEnv = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(argv, { out: (line) => out.push(line), err: (line) => err.push(line), stopSignal: new Promise(() => {}), env });
  return { code, stdout: out.join('\n'), stderr: err.join('\n') };
}

describe('client command lines', () => {
  it('have defaults: the reference server, project and tenant "default", 10 s, text output', () => {
    const { operation, hub } = parsed(['task', 'list']);
    expect(hub).toEqual({ server: DEFAULT_SERVER_URL, token: undefined, json: false, timeoutMs: 10_000 });
    expect(operation).toMatchObject({ kind: 'read', key: 'default' });
    expect(parsed(['orchestration', 'show']).operation).toMatchObject({ kind: 'read', key: 'default' });
  });

  it('take the server and token from the environment, and flags over it', () => {
    const env = { LOCKSTEP_SERVER: 'ws://hub.internal:9000/sync', LOCKSTEP_TOKEN: 'from-env' };
    expect(parsed(['task', 'list'], env).hub).toMatchObject({ server: 'ws://hub.internal:9000/sync', token: 'from-env' });
    expect(parsed(['task', 'list', '--server', 'wss://other/x', '--token', 'flag'], env).hub).toMatchObject({ server: 'wss://other/x', token: 'flag' });
    expect(parsed(['task', 'list', '--json', '--timeout', '0.25']).hub).toMatchObject({ json: true, timeoutMs: 250 });
  });

  it.each([
    ['http://127.0.0.1:7420', 'ws://127.0.0.1:7420/lockstep'],
    ['http://127.0.0.1:7420/', 'ws://127.0.0.1:7420/lockstep'],
    ['https://hub.example.com', 'wss://hub.example.com/lockstep'],
    ['https://hub.example.com/team-a/', 'wss://hub.example.com/team-a/lockstep'],
    ['http://localhost:7420/lockstep', 'ws://localhost:7420/lockstep'],
    ['http://localhost:7420/?tenant=a#top', 'ws://localhost:7420/lockstep?tenant=a'],
    ['ws://127.0.0.1:7420', 'ws://127.0.0.1:7420/'],
    ['wss://hub.example.com/custom/path', 'wss://hub.example.com/custom/path'],
  ])('map the server %s to %s', (server, url) => {
    expect(parsed(['task', 'list', '--server', server]).hub.server).toBe(url);
  });

  it('build the command a write sends, checked by the domain, with its options', () => {
    const create = parsed([
      'task',
      'create',
      '  Ship it  ',
      '--priority',
      'high',
      '--prompt',
      'go',
      '--project',
      'web',
      '--command-id',
      'retry-1',
      '--expected-version',
      '4',
    ]);
    expect(create.operation).toMatchObject({
      kind: 'command',
      key: 'web',
      type: 'task.create',
      // The domain's schema trims the title, as the hub would.
      payload: { title: 'Ship it', priority: 'high', prompt: 'go' },
      commandId: 'retry-1',
      expectedVersion: 4,
    });
    expect(parsed(['task', 'update', 't1', '--clear-prompt']).operation).toMatchObject({ type: 'task.update', payload: { id: 't1', prompt: null } });
    expect(parsed(['session', 'update', 's1', '--status', 'exited', '--exit-code', '137']).operation).toMatchObject({
      payload: { id: 's1', status: 'exited', exitCode: 137 },
    });
    expect(parsed(['session', 'add-task', 's1', 't1']).operation).toMatchObject({ type: 'session.addTask', payload: { sessionId: 's1', taskId: 't1' } });
    expect(parsed(['orchestration', 'set-desired', '/home/me/app', '3', '--tenant', 'acme']).operation).toMatchObject({
      key: 'acme',
      type: 'workspace.setDesired',
      payload: { workspaceId: '/home/me/app', desired: 3 },
    });
    expect(parsed(['focus', 'blur', 'term-2']).operation).toMatchObject({ type: 'focus.blur', payload: { sessionId: 'term-2' } });
    expect(parsed(['watch', 'focus/web']).operation).toEqual({ kind: 'watch', stream: 'focus/web' });
  });

  it('show help per command and per group, listing every option', async () => {
    for (const subcommand of CLIENT_SUBCOMMANDS) {
      const help = await runCli([...subcommand.words, '--help']);
      expect(help.code).toBe(0);
      expect(help.stdout).toContain(`Usage: lockstep ${subcommand.words.join(' ')}`);
      for (const name of Object.keys(subcommand.flags)) expect(help.stdout).toContain(`--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
      expect(help.stdout).toContain('--server URL');
    }
    const group = await runCli(['session', '--help']);
    expect(group.code).toBe(0);
    for (const action of ['create', 'update', 'delete', 'add-task', 'remove-task', 'list']) expect(group.stdout).toContain(`  ${action}`);
  });

  it.each([
    [['task'], /task needs a command: create, update, delete, list/],
    [['task', 'frob'], /unknown task command "frob"/],
    [['task', 'create'], /task create: takes TITLE, got none/],
    [['task', 'create', 'a', 'b'], /takes TITLE, got "a" "b"/],
    [['task', 'create', '   '], /TITLE: /],
    [['task', 'create', 'x'.repeat(501)], /TITLE: .*500/],
    [['task', 'create', 'x', '--priority', 'huge'], /--priority: .*"urgent"/],
    [['task', 'create', 'x', '--status', 'done'], /--status: /],
    [['task', 'create', 'x', '--id', 'has space'], /--id: ids are 1–128 characters/],
    [['task', 'create', 'x', '--frob'], /Unknown option '--frob'/],
    [['task', 'create', 'x', '--json=yes'], /--json/],
    [['task', 'update', 't1'], /needs at least one of --title, --description, --status, --priority, --prompt, --clear-prompt/],
    [['task', 'update', 't1', '--prompt', 'p', '--clear-prompt'], /--prompt and --clear-prompt exclude each other/],
    [['task', 'list', '--status', 'nope'], /--status: /],
    [['task', 'list', 'extra'], /takes no arguments, got "extra"/],
    [['session', 'create', '--kind', 'robot'], /--kind: /],
    [['session', 'update', 's1', '--exit-code', '1.5'], /--exit-code: expected a whole number/],
    [['session', 'update', 's1', '--name', ''], /--name: /],
    [['session', 'add-task', 's1'], /takes SESSION_ID TASK_ID, got "s1"/],
    [['orchestration', 'set-desired', 'ws'], /takes WORKSPACE_ID DESIRED/],
    [['orchestration', 'set-desired', 'ws', 'lots'], /DESIRED: expected a whole number/],
    [['orchestration', 'set-running', 'ws', '10001'], /RUNNING: /],
    [['orchestration', 'set-desired', '', '1'], /WORKSPACE_ID: /],
    [['orchestration', 'set-desired', '__proto__', '1'], /WORKSPACE_ID: .*reserved/],
    [['orchestration', 'show', '--project', 'x'], /Unknown option '--project'/],
    [['focus', 'set', 'bad id'], /SESSION_ID: /],
    [['focus', 'show', '--tenant', 'x'], /Unknown option '--tenant'/],
    [['watch'], /watch: takes STREAM, got none/],
    [['watch', 'Tasks/x'], /STREAM: stream names are <domain>\/<key>/],
    [['watch', 'tasks'], /STREAM: /],
    [['watch', 'tasks/default', '--expected-version', '1'], /Unknown option '--expected-version'/],
    [['task', 'list', '--server', 'ftp://hub'], /--server: expected a ws:\/\/, wss:\/\/, http:\/\/ or https:\/\/ URL, got "ftp:\/\/hub"/],
    [['task', 'list', '--server', 'not a url'], /--server: /],
    [['task', 'list', '--timeout', '0'], /--timeout: expected a number of seconds above 0/],
    [['task', 'list', '--timeout', 'soon'], /--timeout: expected a number of seconds/],
    [['task', 'list', '--token', ''], /--token: expected a token/],
    [['task', 'list', '--project', 'a/b'], /--project: keys are/],
    [['task', 'delete', 't1', '--expected-version', 'v1'], /--expected-version: expected a whole number/],
    [['task', 'delete', 't1', '--command-id', 'a b'], /--command-id: command ids are/],
  ])('refuse %j with exit code 2 and a message naming the argument', async (argv, message) => {
    expect(() => parseClientCommand(argv)).toThrow(UsageError);
    const { code, stdout, stderr } = await runCli(argv);
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
    expect(stderr).toContain('Usage: lockstep');
    expect(stdout).toBe('');
  });

  it('name the environment variable when its value is wrong', async () => {
    const { code, stderr } = await runCli(['task', 'list'], { LOCKSTEP_SERVER: 'localhost:7420' });
    expect(code).toBe(2);
    expect(stderr).toMatch(/LOCKSTEP_SERVER: expected a ws:\/\//);
  });
});
