import { isIP } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';

const LOOPBACK_NAMES = ['127.0.0.1', 'localhost', '[::1]'];

export interface HostCheckOptions {
  /** More host names the server answers to: `name` (on the server's own port) or `name:port` (e.g. a port Docker maps). */
  allowedHosts?: readonly string[];
  /** More browser origins allowed, exactly (`https://app.example.com`). */
  allowedOrigins?: readonly string[];
}

/**
 * Which `Host` headers and browser `Origin`s a local server answers, against DNS rebinding and
 * cross-site requests: a web page on another site must not drive the server from a visitor's
 * browser. The names are the interface it listens on — on loopback the loopback names, on a given
 * address that address, on every interface (`0.0.0.0`, `::`) the loopback names, every address of
 * this machine and its host name — plus `allowedHosts`, each on the server's own port unless the
 * entry names one. An Origin is allowed when it is `http(s)://` one of those names and ports, or one
 * of `allowedOrigins`. A request without an `Origin` is not from a browser page and is not checked
 * for it; the Host is checked for every request.
 */
export class HostCheck {
  /** `name` → the ports it is allowed on; {@link OWN_PORT} stands for the server's port. */
  readonly #names = new Map<string, Set<string>>();
  readonly #origins: ReadonlySet<string>;
  #port: string | undefined;

  constructor(listenHost: string, options: HostCheckOptions = {}) {
    const wildcard = listenHost === '0.0.0.0' || listenHost === '::' || listenHost === '';
    const loopback = listenHost === 'localhost' || listenHost === '::1' || listenHost.startsWith('127.');
    const names = [bracketed(listenHost)];
    if (loopback || wildcard) names.push(...LOOPBACK_NAMES);
    if (wildcard) {
      names.push(hostname());
      for (const addresses of Object.values(networkInterfaces())) for (const { address } of addresses ?? []) names.push(bracketed(address));
    }
    for (const name of names) if (name !== '' && name !== '0.0.0.0' && name !== '[::]') this.#allow(name, OWN_PORT);
    for (const entry of options.allowedHosts ?? []) {
      const parsed = splitAuthority(entry.toLowerCase());
      if (!parsed) throw new RangeError(`invalid allowed host ${JSON.stringify(entry)}: expected NAME or NAME:PORT`);
      this.#allow(parsed.name, parsed.port ?? OWN_PORT);
    }
    this.#origins = new Set((options.allowedOrigins ?? []).map((origin) => normaliseOrigin(origin)));
  }

  #allow(name: string, port: string): void {
    const key = name.toLowerCase();
    const ports = this.#names.get(key) ?? new Set<string>();
    ports.add(port);
    this.#names.set(key, ports);
  }

  /** Called once the port is known (it may have been 0). */
  listening(port: number): void {
    this.#port = String(port);
  }

  allowsHost(header: string | undefined): boolean {
    if (header === undefined) return false;
    return this.#allows(header.toLowerCase(), '80');
  }

  allowsOrigin(origin: string): boolean {
    let url: URL;
    try {
      url = new URL(origin);
    } catch {
      return false;
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
    if (this.#origins.has(url.origin)) return true;
    return this.#allows(url.host.toLowerCase(), url.protocol === 'https:' ? '443' : '80');
  }

  /** `name[:port]` with one of the names on one of its ports. */
  #allows(authority: string, defaultPort: string): boolean {
    const parsed = splitAuthority(authority);
    const ports = parsed && this.#names.get(parsed.name);
    if (!ports || this.#port === undefined) return false;
    const port = parsed.port ?? defaultPort;
    return ports.has(port) || (port === this.#port && ports.has(OWN_PORT));
  }
}

const OWN_PORT = 'own';

function bracketed(address: string): string {
  return isIP(address) === 6 ? `[${address}]` : address;
}

function splitAuthority(authority: string): { name: string; port: string | undefined } | undefined {
  const match = /^(\[[0-9a-f:.]*\]|[^:[\]\s/]+)(?::(\d{1,5}))?$/.exec(authority);
  if (!match) return undefined;
  return { name: match[1]!, port: match[2] };
}

function normaliseOrigin(origin: string): string {
  try {
    return new URL(origin).origin;
  } catch {
    throw new RangeError(`invalid allowed origin ${JSON.stringify(origin)}: expected scheme://host[:port]`);
  }
}
