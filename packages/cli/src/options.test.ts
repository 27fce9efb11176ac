import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_HOST, DEFAULT_PORT, UsageError, describeStore, parseRepairOptions, parseServeOptions } from './options.js';

describe('lockstep serve options', () => {
  it('has defaults', () => {
    expect(parseServeOptions([])).toEqual({
      port: DEFAULT_PORT,
      host: DEFAULT_HOST,
      store: { kind: 'memory' },
      stdio: false,
      'allowed-host': [],
      'allowed-origin': [],
      'insecure-no-auth': false,
      help: false,
    });
  });

  it('reads the token and site options', () => {
    expect(
      parseServeOptions(['--token-file', 'secrets/token', '--allowed-host', 'hub.local:8080', '--allowed-host', 'box', '--allowed-origin', 'https://app.example.com']),
    ).toMatchObject({ 'token-file': resolve('secrets/token'), 'allowed-host': ['hub.local:8080', 'box'], 'allowed-origin': ['https://app.example.com'] });
    expect(parseServeOptions(['--insecure-no-auth'])).toMatchObject({ 'insecure-no-auth': true });
    expect(parseServeOptions(['--help'])).toMatchObject({ help: true });
  });

  it('reads every option', () => {
    expect(parseServeOptions(['--port', '0', '--host', '0.0.0.0', '--store', 'memory', '--codec', 'msgpack'])).toEqual({
      port: 0,
      host: '0.0.0.0',
      store: { kind: 'memory' },
      codec: 'msgpack',
      stdio: false,
      'allowed-host': [],
      'allowed-origin': [],
      'insecure-no-auth': false,
      help: false,
    });
    expect(parseServeOptions(['--stdio'])).toMatchObject({ stdio: true });
  });

  it('reads a file store, its directory resolved', () => {
    expect(parseServeOptions(['--store', 'file:/var/lib/lockstep'])).toMatchObject({ store: { kind: 'file', directory: '/var/lib/lockstep' } });
    const relative = parseServeOptions(['--store', 'file:data/hub']);
    expect(relative.store).toEqual({ kind: 'file', directory: resolve('data/hub') });
    expect(describeStore(relative.store)).toBe(`file:${resolve('data/hub')}`);
    expect(describeStore({ kind: 'memory' })).toBe('memory');
  });

  it.each([
    [['--port', 'eighty'], /--port/],
    [['--port', '70000'], /--port/],
    [['--port', '-1'], /--port/],
    [['--store', 'mongodb://x'], /--store/],
    [['--store', 'file:'], /--store: expected memory or file:DIR/],
    [['--store', 'disk:/x'], /--store/],
    [['--codec', 'xml'], /--codec/],
    [['--frobnicate'], /Unknown option/],
    [['extra'], /positional/i],
    [['--stdio', '--codec', 'msgpack'], /stdio speaks JSON/],
    [['--insecure-no-auth', '--host', '0.0.0.0'], /refused on a non-loopback --host/],
    [['--insecure-no-auth', '--token-file', 't'], /cannot be combined/],
    [['--allowed-host', 'a b'], /--allowed-host/],
    [['--allowed-origin', 'evil.example'], /--allowed-origin/],
  ])('refuses %j with a clear message', (args, message) => {
    expect(() => parseServeOptions(args)).toThrow(UsageError);
    expect(() => parseServeOptions(args)).toThrow(message);
  });
});

describe('lockstep repair options', () => {
  it('takes one directory and --yes', () => {
    expect(parseRepairOptions(['data'])).toEqual({ directory: resolve('data'), yes: false });
    expect(parseRepairOptions(['/srv/hub', '--yes'])).toEqual({ directory: '/srv/hub', yes: true });
    expect(parseRepairOptions(['-y', '/srv/hub'])).toEqual({ directory: '/srv/hub', yes: true });
  });

  it.each([
    [[], /one data directory, got none/],
    [['a', 'b'], /one data directory, got "a" "b"/],
    [['a', '--force'], /Unknown option/],
    [['a', '--yes=no'], /yes/],
  ])('refuses %j with a clear message', (args, message) => {
    expect(() => parseRepairOptions(args)).toThrow(UsageError);
    expect(() => parseRepairOptions(args)).toThrow(message);
  });
});
