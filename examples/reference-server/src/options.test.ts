import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_HOST, DEFAULT_PORT } from './contract.js';
import { UsageError, parseMainOptions, profilesOf } from './options.js';
import { tempDir } from './testing.js';

describe('pnpm start options', () => {
  it('defaults to 127.0.0.1:7420 on the file store', () => {
    expect(parseMainOptions([], {})).toEqual({
      port: DEFAULT_PORT,
      host: DEFAULT_HOST,
      'no-terminals': false,
      'allowed-host': [],
      'allowed-origin': [],
      'insecure-no-auth': false,
      help: false,
    });
  });

  it('reads --port, --host, --data and --store, and PORT when --port is absent', () => {
    expect(parseMainOptions(['--port', '0', '--host', '0.0.0.0', '--data', 'here', '--no-terminals'], {})).toEqual({
      port: 0,
      host: '0.0.0.0',
      data: resolve('here'),
      'no-terminals': true,
      'allowed-host': [],
      'allowed-origin': [],
      'insecure-no-auth': false,
      help: false,
    });
    expect(parseMainOptions(['--token-file', 'tok', '--allowed-host', 'box:8080', '--allowed-origin', 'http://box:8080'], {})).toMatchObject({
      'token-file': resolve('tok'),
      'allowed-host': ['box:8080'],
      'allowed-origin': ['http://box:8080'],
    });
    expect(parseMainOptions(['--store', 'postgres://hub@db:5432/app'], { PORT: '8080' })).toMatchObject({ port: 8080, store: 'postgres://hub@db:5432/app' });
    expect(parseMainOptions(['--store', 'memory', '-p', '9000'], { PORT: '8080' })).toMatchObject({ port: 9000, store: 'memory' });
    // `pnpm start -- --port 1` passes the separator through.
    expect(parseMainOptions(['--', '--port', '1'], {})).toMatchObject({ port: 1 });
  });

  it.each([
    [['--port', 'high'], {}, /--port: .*number/],
    [['--port', '70000'], {}, /--port: /],
    [[], { PORT: 'x' }, /PORT: /],
    [['--store', 'mysql://db'], {}, /--store: expected memory or a postgres:\/\/ URL/],
    [['--data', 'dir', '--store', 'memory'], {}, /cannot be combined/],
    [['--insecure-no-auth', '--token-file', 't'], {}, /cannot be combined/],
    [['--allowed-origin', 'evil.example'], {}, /--allowed-origin/],
    [['--verbose'], {}, /Unknown option '--verbose'/],
    [['--no-terminals', '--profile', 'a=b'], {}, /--no-terminals runs no programs/],
    [['serve'], {}, /positional/],
  ])('refuses %j (env %j) with a message naming the option', (args, env, message) => {
    expect(() => parseMainOptions(args, env)).toThrow(UsageError);
    expect(() => parseMainOptions(args, env)).toThrow(message);
  });

  it('reads --profile (repeatable), --profiles FILE and --default-profile', async () => {
    const dir = await tempDir();
    const file = join(dir, 'profiles.json');
    await writeFile(file, JSON.stringify({ default: 'review', profiles: { review: { program: '/bin/sh', args: ['-c', 'echo review'], prompt: 'stdin' } } }));
    const options = parseMainOptions(['--profile', 'agent:argv=node agent.mjs --fast', '--profile', 'top=top', '--profiles', file], {});
    expect(options).toMatchObject({ profile: ['agent:argv=node agent.mjs --fast', 'top=top'], profiles: file });
    expect(await profilesOf(options)).toEqual({
      profiles: {
        review: { program: '/bin/sh', args: ['-c', 'echo review'], env: {}, prompt: 'stdin' },
        agent: { program: 'node', args: ['agent.mjs', '--fast'], prompt: 'argv' },
        top: { program: 'top', args: [] },
      },
      defaultProfile: 'review',
    });
    expect(await profilesOf(parseMainOptions(['--profile', 'a=x', '--default-profile', 'a'], {}))).toEqual({
      profiles: { a: { program: 'x', args: [] } },
      defaultProfile: 'a',
    });
    expect(await profilesOf(parseMainOptions([], {}))).toEqual({});
    await expect(profilesOf(parseMainOptions(['--profile', 'review=sh', '--profiles', file], {}))).rejects.toThrow(
      new UsageError('--profile review: profile review is given twice'),
    );
    await expect(profilesOf(parseMainOptions(['--profile', 'nothing'], {}))).rejects.toThrow(UsageError);
    await expect(profilesOf(parseMainOptions(['--profiles', join(dir, 'missing.json')], {}))).rejects.toThrow(/--profiles .*missing\.json: ENOENT/);
  });
});
