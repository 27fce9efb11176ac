import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_HOST, DEFAULT_PORT } from './contract.js';
import { UsageError, parseMainOptions } from './options.js';

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
    [['serve'], {}, /positional/],
  ])('refuses %j (env %j) with a message naming the option', (args, env, message) => {
    expect(() => parseMainOptions(args, env)).toThrow(UsageError);
    expect(() => parseMainOptions(args, env)).toThrow(message);
  });
});
