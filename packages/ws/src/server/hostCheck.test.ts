import { hostname, networkInterfaces } from 'node:os';
import { describe, expect, it } from 'vitest';
import { HostCheck } from './hostCheck.js';

function check(listenHost: string, options: ConstructorParameters<typeof HostCheck>[1] = {}, port = 7420): HostCheck {
  const hosts = new HostCheck(listenHost, options);
  hosts.listening(port);
  return hosts;
}

describe('HostCheck', () => {
  it('on loopback answers the loopback names on its own port only', () => {
    const hosts = check('127.0.0.1');
    for (const host of ['127.0.0.1:7420', 'localhost:7420', 'LOCALHOST:7420', '[::1]:7420']) expect(hosts.allowsHost(host), host).toBe(true);
    for (const host of ['evil.example:7420', '127.0.0.1:7421', '127.0.0.1', 'localhost', '0.0.0.0:7420', '', '127.0.0.1:7420/x', 'a b:7420']) {
      expect(hosts.allowsHost(host), host).toBe(false);
    }
    expect(hosts.allowsHost(undefined)).toBe(false);
  });

  it('allows only its own pages as origins: scheme, name and port', () => {
    const hosts = check('127.0.0.1');
    expect(hosts.allowsOrigin('http://127.0.0.1:7420')).toBe(true);
    expect(hosts.allowsOrigin('http://localhost:7420')).toBe(true);
    for (const origin of [
      'http://127.0.0.1:7421',
      'http://evil.example:7420',
      'null',
      'file://',
      'chrome-extension://abc',
      'http://127.0.0.1',
      'ws://127.0.0.1:7420',
      'not a url',
    ]) {
      expect(hosts.allowsOrigin(origin), origin).toBe(false);
    }
  });

  it("on every interface answers the loopback names, the machine's addresses and host name — never any host", () => {
    const hosts = check('0.0.0.0');
    expect(hosts.allowsHost('127.0.0.1:7420')).toBe(true);
    expect(hosts.allowsHost(`${hostname()}:7420`)).toBe(true);
    const address = Object.values(networkInterfaces())
      .flat()
      .find((entry) => entry && entry.family === 'IPv4')?.address;
    if (address) expect(hosts.allowsHost(`${address}:7420`)).toBe(true);
    expect(hosts.allowsHost('evil.example:7420')).toBe(false);
    expect(hosts.allowsHost('0.0.0.0:7420')).toBe(false);
    expect(hosts.allowsOrigin('http://evil.example:7420')).toBe(false);
    expect(check('::').allowsHost('[::1]:7420')).toBe(true);
  });

  it('on a given address answers that address', () => {
    const hosts = check('10.1.2.3');
    expect(hosts.allowsHost('10.1.2.3:7420')).toBe(true);
    expect(hosts.allowsHost('127.0.0.1:7420')).toBe(false);
  });

  it('adds allowed hosts (on its port, or the port they name) and exact origins', () => {
    const hosts = check('127.0.0.1', { allowedHosts: ['box.lan', 'localhost:8080'], allowedOrigins: ['https://app.example.com'] });
    expect(hosts.allowsHost('box.lan:7420')).toBe(true);
    expect(hosts.allowsHost('box.lan:8080')).toBe(false);
    expect(hosts.allowsHost('localhost:8080')).toBe(true);
    expect(hosts.allowsHost('localhost:7420')).toBe(true);
    expect(hosts.allowsOrigin('http://localhost:8080')).toBe(true);
    expect(hosts.allowsOrigin('https://app.example.com')).toBe(true);
    expect(hosts.allowsOrigin('https://app.example.com:8443')).toBe(false);
    expect(hosts.allowsOrigin('http://app.example.com')).toBe(false);
    expect(() => new HostCheck('127.0.0.1', { allowedHosts: ['a b'] })).toThrow(RangeError);
    expect(() => new HostCheck('127.0.0.1', { allowedOrigins: ['nope'] })).toThrow(RangeError);
  });

  it('answers nothing before it knows its port', () => {
    const hosts = new HostCheck('127.0.0.1');
    expect(hosts.allowsHost('127.0.0.1:7420')).toBe(false);
  });
});
