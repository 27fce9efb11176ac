import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LockstepError } from '@lockstep/core';
import { describe, expect, it } from 'vitest';
import { AGENT_PROFILES, AGENT_SCRIPT } from './agentProfiles.js';
import { Profiles, loadProfilesFile, parseProfileFlag } from './profiles.js';
import { RawPeer, call, startTestServer, tempDir, until } from './testing.js';

const shell = { file: '/bin/sh', args: [] };
const json = (body: unknown) => ({ body });
const sessionOf = async (url: string, id: string) => (await call(url, 'GET', `/api/sessions/${id}`)).json;

/** The output of a session's terminal, as a viewer attached over WebSocket receives it. */
async function outputOf(wsUrl: string, id: string, until_: string): Promise<string> {
  const peer = await RawPeer.connect(wsUrl);
  await until(async () => {
    try {
      await peer.request('terminal.attach', { terminalId: id });
      return true;
    } catch {
      return false;
    }
  }, `the terminal of ${id}`);
  await until(() => peer.terminalText(id).includes(until_), `${JSON.stringify(until_)} in the output of ${id}`);
  return peer.terminalText(id);
}

describe('session profiles over REST and WebSocket (seed 003)', () => {
  it('runs a profile with the prompt as its last argument, streams its output, and records its exit', async () => {
    const server = await startTestServer({ profiles: AGENT_PROFILES });
    const created = await call(server.url, 'POST', '/api/sessions/a1', json({ profile: 'agent', prompt: 'Summarise the README' }));
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ id: 'a1', profile: 'agent', prompt: 'Summarise the README' });
    const output = await outputOf(server.wsUrl, 'a1', '[agent] done');
    expect(output).toContain('[agent] prompt from argv: "Summarise the README"');
    expect(output).toMatch(/\[tool_call_start\] read_file \{"path":"README.md"\}\r\n\[tool_call_result\] read_file \{"lines":42\}/);
    // The program is the profile's, with the prompt as one argument (never parsed by a shell).
    expect(server.terminals.get('a1')).toMatchObject({ file: process.execPath, args: [AGENT_SCRIPT, '--delay', '1', 'Summarise the README'] });
    await until(async () => (await sessionOf(server.url, 'a1')).status === 'exited', 'the agent to exit');
    expect(await sessionOf(server.url, 'a1')).toMatchObject({ status: 'exited', exitCode: 0, profile: 'agent', process: { state: 'exited' } });
    expect(await sessionOf(server.url, 'a1')).not.toHaveProperty('signal');
  });

  it('types the prompt into the terminal for a stdin profile, then end-of-file', async () => {
    const server = await startTestServer({ profiles: AGENT_PROFILES });
    await call(server.url, 'POST', '/api/sessions/s1', json({ profile: 'agent-stdin', prompt: 'first line\r\nsecond\tline' }));
    const output = await outputOf(server.wsUrl, 's1', '[agent] done');
    expect(output).toContain('[agent] prompt from stdin: "first line\\nsecond\\tline"');
    expect(server.terminals.get('s1')?.args).toEqual([AGENT_SCRIPT, '--delay', '1']);
    await until(async () => (await sessionOf(server.url, 's1')).status === 'exited', 'the agent to exit');
    expect((await sessionOf(server.url, 's1')).exitCode).toBe(0);
  });

  it('runs the shell for a session that names no profile', async () => {
    const server = await startTestServer({ profiles: AGENT_PROFILES });
    await call(server.url, 'POST', '/api/sessions/plain');
    await until(() => server.terminals.get('plain')?.running === true, 'the shell');
    expect(server.terminals.get('plain')?.file).toBe('/bin/sh');
    expect((await sessionOf(server.url, 'plain')).process).toMatchObject({ state: 'running', profile: 'shell' });
  });

  it('refuses an unknown profile, a prompt the profile does not take, and control characters — over REST and WebSocket — and runs nothing', async () => {
    const server = await startTestServer({ profiles: AGENT_PROFILES });
    const unknown = await call(server.url, 'POST', '/api/sessions', json({ profile: 'claude-code', prompt: 'hi' }));
    expect(unknown.status).toBe(400);
    expect(unknown.json.error).toMatchObject({
      code: 'INVALID_PARAMS',
      message: expect.stringContaining('no profile "claude-code"'),
      details: {
        reason: 'profile.unknown',
        profile: 'claude-code',
        profiles: ['shell', 'agent', 'agent-stdin', 'agent-stay'],
        issues: [{ path: ['profile'] }],
      },
    });
    const noPrompt = await call(server.url, 'POST', '/api/sessions/x', json({ prompt: 'for the shell' }));
    expect(noPrompt.status).toBe(400);
    expect(noPrompt.json.error.details).toMatchObject({ reason: 'profile.takesNoPrompt', profile: 'shell' });
    const control = await call(server.url, 'POST', '/api/sessions/y', json({ profile: 'agent-stdin', prompt: 'stop\u0003now' }));
    expect(control.json.error.details).toMatchObject({ reason: 'prompt.controlCharacter' });
    const long = await call(server.url, 'POST', '/api/sessions/z', json({ profile: 'agent-stdin', prompt: 'x'.repeat(5_000) }));
    expect(long.json.error.details).toMatchObject({ reason: 'prompt.lineTooLong', maxLineBytes: 4_095 });
    // The same long prompt is fine as an argument.
    expect((await call(server.url, 'POST', '/api/sessions/long', json({ profile: 'agent', prompt: 'x'.repeat(5_000) }))).status).toBe(201);

    const peer = await RawPeer.connect(server.wsUrl);
    const refused = await peer.request('command', { id: 'ws-1', stream: 'tasks/default', type: 'session.create', payload: { id: 'w1', profile: 'nope' } }).then(
      () => undefined,
      (error: unknown) => error as LockstepError,
    );
    expect(refused).toMatchObject({ code: 'INVALID_PARAMS', data: { reason: 'profile.unknown' } });
    const sessions = (await call(server.url, 'GET', '/api/sessions')).json.sessions.map((session: { id: string }) => session.id);
    expect(sessions).toEqual(['long']);
    expect(server.terminals.list().map((terminal) => terminal.id)).toEqual(['long']);
  });
});

describe('Profiles', () => {
  it('resolves programs and directories at start, and names the profile that cannot run', async () => {
    const profiles = Profiles.create({ shell, cwd: '/', profiles: { ls: { program: 'ls', args: ['-l'] } }, sourceEnv: { PATH: '/usr/bin:/bin' } });
    expect(profiles.names).toEqual(['shell', 'ls']);
    expect(profiles.get('ls')).toMatchObject({ file: expect.stringMatching(/\/ls$/), args: ['-l'], cwd: '/', prompt: 'none' });
    expect(profiles.executables).toEqual(['/bin/sh', profiles.get('ls')!.file]);
    expect(() => Profiles.create({ shell, cwd: '/', profiles: { gone: { program: 'no-such-program-here' } }, sourceEnv: { PATH: '/usr/bin' } })).toThrow(
      'profile gone: no executable "no-such-program-here" on its PATH',
    );
    expect(() => Profiles.create({ shell, cwd: '/', profiles: { nowhere: { program: '/bin/sh', cwd: '/no/such/dir' } } })).toThrow(
      'profile nowhere: working directory /no/such/dir does not exist',
    );
    expect(() => Profiles.create({ shell, cwd: '/', profiles: { bad: { program: '/bin/sh', prompt: 'email' as never } } })).toThrow(/profile bad: prompt:/);
    expect(() => Profiles.create({ shell, cwd: '/', defaultProfile: 'agent' })).toThrow('the default profile "agent" is not one of the profiles (shell)');
  });

  it('gives the program only the environment its profile allows, and the session it runs for', () => {
    const sourceEnv = { PATH: '/usr/bin:/bin', HOME: '/home/op', LOCKSTEP_TOKEN: 'secret', DATABASE_URL: 'postgres://x', ANTHROPIC_API_KEY: 'key' };
    const profiles = Profiles.create({
      shell,
      cwd: '/',
      sourceEnv,
      profiles: { agent: { program: '/bin/sh', args: ['-c', 'true'], inheritEnv: ['PATH', 'ANTHROPIC_API_KEY'], env: { MODE: 'demo' }, prompt: 'argv' } },
    });
    const shellLaunch = profiles.launch({ id: 's1' }, 'default');
    expect(shellLaunch.env).toEqual({
      PATH: '/usr/bin:/bin',
      HOME: '/home/op',
      TERM: 'xterm-256color',
      LOCKSTEP_SESSION_ID: 's1',
      LOCKSTEP_PROJECT: 'default',
    });
    const agent = profiles.launch({ id: 'a1', profile: 'agent', prompt: 'do it; rm -rf /' }, 'default');
    expect(agent.env).toEqual({
      PATH: '/usr/bin:/bin',
      ANTHROPIC_API_KEY: 'key',
      TERM: 'xterm-256color',
      MODE: 'demo',
      LOCKSTEP_SESSION_ID: 'a1',
      LOCKSTEP_PROJECT: 'default',
    });
    expect(agent.args).toEqual(['-c', 'true', 'do it; rm -rf /']);
    expect(agent.input).toBeUndefined();
    expect(() => profiles.launch({ id: 'a2', profile: 'nope' }, 'default')).toThrow(LockstepError);
  });

  it('lists the profiles for clients, the default first', () => {
    const profiles = Profiles.create({
      shell,
      cwd: '/',
      defaultProfile: 'agent',
      profiles: { agent: { program: '/bin/sh', description: 'An agent', prompt: 'stdin' } },
    });
    expect(profiles.list()).toEqual([
      { name: 'agent', description: 'An agent', acceptsPrompt: true, prompt: 'stdin', default: true },
      { name: 'shell', description: 'A login shell (/bin/sh)', acceptsPrompt: false, prompt: 'none', default: false },
    ]);
  });

  it('reads --profile flags and --profiles files', async () => {
    expect(parseProfileFlag('agent:argv=node agent.mjs  --delay 5')).toEqual([
      'agent',
      { program: 'node', args: ['agent.mjs', '--delay', '5'], prompt: 'argv' },
    ]);
    expect(parseProfileFlag('top=top')).toEqual(['top', { program: 'top', args: [] }]);
    expect(() => parseProfileFlag('agent')).toThrow(/expected NAME\[:PROMPT\]=PROGRAM/);
    expect(() => parseProfileFlag('agent:email=node')).toThrow(/prompt mode is one of none, argv, stdin/);
    expect(() => parseProfileFlag('-x=node')).toThrow(/a profile name/);

    const dir = await tempDir();
    const file = join(dir, 'profiles.json');
    await writeFile(file, JSON.stringify({ default: 'agent', profiles: { agent: { program: './bin/agent', cwd: 'work', args: ['--fast'], prompt: 'argv' } } }));
    expect(await loadProfilesFile(file)).toEqual({
      default: 'agent',
      profiles: { agent: { program: join(dir, 'bin/agent'), cwd: join(dir, 'work'), args: ['--fast'], env: {}, prompt: 'argv' } },
    });
    await writeFile(file, JSON.stringify({ profiles: { agent: { program: 'node', argv: ['x'] } } }));
    await expect(loadProfilesFile(file)).rejects.toThrow(/profiles\.agent: Unrecognized key: "argv"/);
    await writeFile(file, '{ not json');
    await expect(loadProfilesFile(file)).rejects.toThrow(/--profiles .*profiles\.json: /);
  });
});
