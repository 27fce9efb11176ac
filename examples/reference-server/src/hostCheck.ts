import { isIP } from 'node:net';

const LOOPBACK_NAMES = ['127.0.0.1', 'localhost', '[::1]'];

/**
 * Which `Host` headers and browser `Origin`s the server answers, against DNS rebinding and
 * cross-site requests: a web page on another site must not drive this server's terminals or API
 * from a visitor's browser. Listening on loopback, the server answers to the loopback names only
 * (plus `allowedHosts`); listening on a specific address, to that address; listening on every
 * interface (`0.0.0.0`, `::`), to any host — then browser origins are only checked for the port.
 * Requests without an `Origin` (curl, Node, other programs) are not browsers and are not checked.
 */
export class HostCheck {
  readonly #names: ReadonlySet<string> | undefined;
  #port: number | undefined;

  constructor(listenHost: string, allowedHosts: readonly string[]) {
    const wildcard = listenHost === '0.0.0.0' || listenHost === '::' || listenHost === '';
    const loopback = listenHost === 'localhost' || listenHost === '::1' || listenHost.startsWith('127.');
    const own = isIP(listenHost) === 6 ? `[${listenHost}]` : listenHost;
    this.#names = wildcard ? undefined : new Set([...(loopback ? LOOPBACK_NAMES : []), own, ...allowedHosts].map((name) => name.toLowerCase()));
  }

  /** Called once the port is known (it may have been 0). */
  listening(port: number): void {
    this.#port = port;
  }

  allowsHost(header: string | undefined): boolean {
    if (this.#names === undefined) return true;
    if (header === undefined) return false;
    return this.#allows(header.toLowerCase());
  }

  allowsOrigin(origin: string): boolean {
    let url: URL;
    try {
      url = new URL(origin);
    } catch {
      return false;
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
    if (this.#names === undefined) return url.port === String(this.#port);
    return this.#allows(url.host.toLowerCase());
  }

  /** `name:port` with one of the names and this server's port (or no port for port 80). */
  #allows(authority: string): boolean {
    const match = /^(\[[^\]]*\]|[^:]*)(?::(\d+))?$/.exec(authority);
    if (!match) return false;
    const port = match[2] ?? '80';
    return this.#names!.has(match[1]!) && port === String(this.#port);
  }
}
