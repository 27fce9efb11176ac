import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_HOST, DEFAULT_PORT, UsageError, describeStore, parseRepairOptions, parseServeOptions } from './options.js';

describe('lockstep serve options', () => {
  it('has defaults', () => {
    expect(parseServeOptions([])).toEqual({ port: DEFAULT_PORT, host: DEFAULT_HOST, store: { kind: 'memory' }, stdio: false });
  });

  it('reads every option', () => {
    expect(parseServeOptions(['--port', '0', '--host', '0.0.0.0', '--store', 'memory', '--codec', 'msgpack'])).toEqual({
      port: 0,
      host: '0.0.0.0',
      store: { kind: 'memory' },
      codec: 'msgpack',
      stdio: false,
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
