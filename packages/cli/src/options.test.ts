import { resolve } from 'node:path';
import { HUB_DEFAULTS } from '@lockstep/server';
import { WS_SERVER_DEFAULTS } from '@lockstep/ws/server';
import { describe, expect, it } from 'vitest';
import { DEFAULT_HOST, DEFAULT_PORT, SERVE_LIMIT_DEFAULTS, UsageError, describeStore, parseRepairOptions, parseServeOptions } from './options.js';
import { SERVE_HELP } from './run.js';
import { hubLimits, webSocketLimits } from './serve.js';

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
      parseServeOptions([
        '--token-file',
        'secrets/token',
        '--allowed-host',
        'hub.local:8080',
        '--allowed-host',
        'box',
        '--allowed-origin',
        'https://app.example.com',
      ]),
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
    [['--rate-limit', '0'], /--rate-limit: expected a whole number from 1 to 1000000, or off/],
    [['--rate-limit', 'fast'], /--rate-limit: expected a whole number from 1 to 1000000, or off/],
    [['--rate-limit', '2.5'], /--rate-limit: /],
    [['--rate-limit', 'OFF'], /--rate-limit: /],
    [['--max-connections-per-address', '1.5'], /--max-connections-per-address: expected a whole number from 1 to 1000000, or off/],
    [['--max-subscriptions', 'off'], /--max-subscriptions: expected a whole number/],
    [['--max-subscriptions', '0'], /--max-subscriptions: /],
    [['--close-timeout', 'soon'], /--close-timeout: expected a number of seconds/],
    [['--close-timeout', '601'], /--close-timeout: at most 600 seconds/],
    [['--stdio', '--max-connections-per-address', '4'], /apply to WebSocket only/],
    [['--stdio', '--close-timeout', '1'], /apply to WebSocket only/],
  ])('refuses %j with a clear message', (args, message) => {
    expect(() => parseServeOptions(args)).toThrow(UsageError);
    expect(() => parseServeOptions(args)).toThrow(message);
  });
});

describe('lockstep serve limits', () => {
  it('reads a number or off for each limit, and seconds for --close-timeout', () => {
    expect(
      parseServeOptions(['--rate-limit', '50', '--max-connections-per-address', 'off', '--max-subscriptions', '64', '--close-timeout', '0.5']),
    ).toMatchObject({ 'rate-limit': 50, 'max-connections-per-address': false, 'max-subscriptions': 64, 'close-timeout': 500 });
    expect(parseServeOptions(['--rate-limit', 'off', '--max-connections-per-address', '1', '--close-timeout', '0'])).toMatchObject({
      'rate-limit': false,
      'max-connections-per-address': 1,
      'close-timeout': 0,
    });
    expect(parseServeOptions(['--stdio', '--rate-limit', '10', '--max-subscriptions', '8'])).toMatchObject({
      stdio: true,
      'rate-limit': 10,
      'max-subscriptions': 8,
    });
  });

  it('passes only the limits given, as the hub and WebSocket server options', () => {
    expect(hubLimits(parseServeOptions([]))).toEqual({});
    expect(webSocketLimits(parseServeOptions([]))).toEqual({});
    expect(hubLimits(parseServeOptions(['--rate-limit', '50', '--max-subscriptions', '64']))).toEqual({
      rateLimit: { messagesPerSecond: 50, burst: 100 },
      maxSubscriptionsPerConnection: 64,
    });
    expect(hubLimits(parseServeOptions(['--rate-limit', 'off']))).toEqual({ rateLimit: false });
    // One peer on stdio: no rate limit unless asked for.
    expect(hubLimits(parseServeOptions(['--stdio']))).toEqual({ rateLimit: false });
    expect(hubLimits(parseServeOptions(['--stdio', '--rate-limit', '10']))).toEqual({ rateLimit: { messagesPerSecond: 10, burst: 20 } });
    expect(webSocketLimits(parseServeOptions(['--max-connections-per-address', 'off', '--close-timeout', '1.5']))).toEqual({
      maxConnectionsPerAddress: Number.POSITIVE_INFINITY,
      closeTimeoutMs: 1500,
    });
    expect(webSocketLimits(parseServeOptions(['--max-connections-per-address', '8']))).toEqual({ maxConnectionsPerAddress: 8 });
  });

  it('states the defaults the hub and the WebSocket server really have', () => {
    expect(SERVE_LIMIT_DEFAULTS).toEqual({
      rateLimit: HUB_DEFAULTS.rateLimit.messagesPerSecond,
      maxConnectionsPerAddress: WS_SERVER_DEFAULTS.maxConnectionsPerAddress,
      maxSubscriptions: HUB_DEFAULTS.maxSubscriptionsPerConnection,
      closeTimeoutSeconds: WS_SERVER_DEFAULTS.closeTimeoutMs / 1000,
    });
    // The "2×N" of the help: the hub's default burst is twice its rate too.
    expect(HUB_DEFAULTS.rateLimit.burst).toBe(2 * HUB_DEFAULTS.rateLimit.messagesPerSecond);
    expect(SERVE_HELP).toContain(`(default ${HUB_DEFAULTS.rateLimit.messagesPerSecond}; off with --stdio)`);
    expect(SERVE_HELP).toContain(`(default ${WS_SERVER_DEFAULTS.maxConnectionsPerAddress};`);
    expect(SERVE_HELP).toContain(`(default ${HUB_DEFAULTS.maxSubscriptionsPerConnection})`);
    expect(SERVE_HELP).toContain(`(default ${WS_SERVER_DEFAULTS.closeTimeoutMs / 1000})`);
  });
});

describe('lockstep repair options', () => {
  it('takes one directory and --yes', () => {
    expect(parseRepairOptions(['data'])).toEqual({ directory: resolve('data'), yes: false });
    expect(parseRepairOptions(['/srv/hub', '--yes'])).toEqual({ directory: '/srv/hub', yes: true });
    expect(parseRepairOptions(['-y', '/srv/hub'])).toEqual({ directory: '/srv/hub', yes: true });
    expect(parseRepairOptions(['--help'])).toEqual({ help: true });
    expect(parseRepairOptions(['data', '-h'])).toEqual({ help: true });
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
