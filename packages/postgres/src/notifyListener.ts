import type { Notification, Pool, PoolClient } from 'pg';
import { quoteIdentifier } from './schema.js';

export interface NotifyListenerOptions {
  pool: Pool;
  channel: string;
  /** Shown in `pg_stat_activity.application_name` of the LISTEN connection. */
  applicationName: string;
  /** The SQL that lists every stream's head, run on the LISTEN connection after each (re)connect. */
  headsSql: string;
  backoff: { initialMs: number; maxMs: number };
  /** How often the idle LISTEN connection is checked with a query (finds half-open sockets). */
  healthCheckMs: number;
  onHead(stream: string, head: number): void;
  onError(error: unknown, context: string): void;
}

/**
 * One dedicated connection that LISTENs on the store's channel and reports `(stream, head)` for every
 * notification. When the connection is lost it reconnects with exponential backoff and jitter, and
 * after every (re)connect it reports the head of every stream: whatever was appended while it was not
 * listening is then caught up, because a hub reads from where it last was. It LISTENs before it
 * reads the heads, so nothing committed in between can fall through.
 */
export class NotifyListener {
  readonly #options: NotifyListenerOptions;
  #client: PoolClient | undefined;
  #stopped = false;
  #failures = 0;
  #retryTimer: NodeJS.Timeout | undefined;
  #healthTimer: NodeJS.Timeout | undefined;
  #connecting: Promise<void> | undefined;
  readonly #dropped = new WeakSet<PoolClient>();
  readonly #handlers = new WeakMap<PoolClient, Handlers>();

  constructor(options: NotifyListenerOptions) {
    this.#options = options;
  }

  /** Connects unless connected or connecting; resolves once that attempt is over (listening or retrying). */
  start(): Promise<void> {
    if (this.#stopped || this.#client) return Promise.resolve();
    this.#connecting ??= this.#connect();
    return this.#connecting;
  }

  /** Resolves once a connection attempt in progress (if any) is over. */
  async settled(): Promise<void> {
    await this.#connecting;
  }

  /** True while the LISTEN connection is up. */
  get listening(): boolean {
    return this.#client !== undefined;
  }

  async #connect(): Promise<void> {
    const { pool, channel, applicationName, headsSql } = this.#options;
    let client: PoolClient | undefined;
    try {
      client = await pool.connect();
      const current = client;
      // Attached before anything else: an error event without a listener would crash the process.
      const handlers: Handlers = {
        error: (error) => this.#lost(current, error),
        end: () => this.#lost(current, new Error('LISTEN connection ended')),
        notification: (message) => this.#notified(message),
      };
      this.#handlers.set(current, handlers);
      current.on('error', handlers.error);
      current.on('end', handlers.end);
      current.on('notification', handlers.notification);
      await current.query('SELECT set_config($1, $2, false)', ['application_name', applicationName]);
      await current.query(`LISTEN ${quoteIdentifier(channel)}`);
      if (this.#stopped) {
        this.#dropped.add(current);
        this.#detach(current);
        current.release(true);
        return;
      }
      this.#client = current;
      this.#failures = 0;
      this.#scheduleHealthCheck();
      const { rows } = await current.query<{ stream: string; head: string }>(headsSql);
      for (const row of rows) this.#report(row.stream, Number(row.head));
    } catch (error) {
      if (client) this.#lost(client, error);
      else this.#retry(error);
    } finally {
      this.#connecting = undefined;
    }
  }

  #notified(message: Notification): void {
    if (message.channel !== this.#options.channel || message.payload === undefined) return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(message.payload);
    } catch {
      this.#options.onError(new Error(`malformed notification on ${message.channel}: ${message.payload}`), 'reading a notification');
      return;
    }
    const { stream, head } = (parsed ?? {}) as { stream?: unknown; head?: unknown };
    if (typeof stream === 'string' && typeof head === 'number') this.#report(stream, head);
  }

  #report(stream: string, head: number): void {
    try {
      this.#options.onHead(stream, head);
    } catch (error) {
      this.#options.onError(error, `reporting the head of ${stream}`);
    }
  }

  /** The connection failed: drop it (never back into the pool) and try again later. Once per connection. */
  #lost(client: PoolClient, error: unknown): void {
    if (this.#dropped.has(client)) return;
    this.#dropped.add(client);
    if (this.#client === client) this.#client = undefined;
    clearTimeout(this.#healthTimer);
    this.#detach(client);
    try {
      client.release(error instanceof Error ? error : true);
    } catch {
      // Already released: nothing to give back.
    }
    this.#retry(error);
  }

  #retry(error: unknown): void {
    if (this.#stopped) return;
    const { initialMs, maxMs } = this.#options.backoff;
    const ceiling = Math.min(maxMs, initialMs * 2 ** this.#failures);
    this.#failures++;
    // Jitter over the upper half of the ceiling, so hubs that lost the database together do not all
    // come back at the same moment.
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.#options.onError(error, `LISTEN connection lost; reconnecting in ${Math.round(delay)} ms`);
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      // After the attempt that failed has wound up (its error may arrive before its query rejects).
      void this.settled().then(() => this.start());
    }, delay);
    this.#retryTimer.unref();
  }

  #scheduleHealthCheck(): void {
    clearTimeout(this.#healthTimer);
    const { healthCheckMs } = this.#options;
    if (!(healthCheckMs > 0)) return;
    this.#healthTimer = setTimeout(() => void this.#checkHealth(), healthCheckMs);
    this.#healthTimer.unref();
  }

  async #checkHealth(): Promise<void> {
    const client = this.#client;
    if (!client || this.#stopped) return;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        client.query('SELECT 1'),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`LISTEN connection did not answer within ${this.#options.healthCheckMs} ms`)), this.#options.healthCheckMs);
        }),
      ]);
      if (this.#client === client) this.#scheduleHealthCheck();
    } catch (error) {
      this.#lost(client, error);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stops listening and gives the connection back (closed). */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#healthTimer);
    await this.#connecting;
    const client = this.#client;
    this.#client = undefined;
    if (!client) return;
    this.#dropped.add(client);
    this.#detach(client);
    // Closed rather than returned: a pooled connection must not keep LISTENing for someone else.
    client.release(true);
  }

  /** Removes this listener's handlers; later errors of the dying socket are swallowed, not thrown. */
  #detach(client: PoolClient): void {
    const handlers = this.#handlers.get(client);
    if (handlers) {
      client.off('error', handlers.error);
      client.off('end', handlers.end);
      client.off('notification', handlers.notification);
    }
    client.on('error', () => {});
  }
}

interface Handlers {
  error: (error: Error) => void;
  end: () => void;
  notification: (message: Notification) => void;
}
