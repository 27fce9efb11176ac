import { describe, expect, it } from 'vitest';
import { DEFAULT_HOST, DEFAULT_PORT, UsageError, parseServeOptions } from './options.js';

describe('lockstep serve options', () => {
  it('has defaults', () => {
    expect(parseServeOptions([])).toEqual({ port: DEFAULT_PORT, host: DEFAULT_HOST, store: 'memory', stdio: false });
  });

  it('reads every option', () => {
    expect(parseServeOptions(['--port', '0', '--host', '0.0.0.0', '--store', 'memory', '--codec', 'msgpack'])).toEqual({
      port: 0,
      host: '0.0.0.0',
      store: 'memory',
      codec: 'msgpack',
      stdio: false,
    });
    expect(parseServeOptions(['--stdio'])).toMatchObject({ stdio: true });
  });

  it.each([
    [['--port', 'eighty'], /--port/],
    [['--port', '70000'], /--port/],
    [['--port', '-1'], /--port/],
    [['--store', 'mongodb://x'], /--store/],
    [['--codec', 'xml'], /--codec/],
    [['--frobnicate'], /Unknown option/],
    [['extra'], /positional/i],
    [['--stdio', '--codec', 'msgpack'], /stdio speaks JSON/],
  ])('refuses %j with a clear message', (args, message) => {
    expect(() => parseServeOptions(args)).toThrow(UsageError);
    expect(() => parseServeOptions(args)).toThrow(message);
  });
});
