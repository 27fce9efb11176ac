/**
 * How the manager starts its orchestrator, in seed 004's two deployment modes:
 *
 * - **sidecar**: a child process speaking lockstep/1 on its stdin/stdout, run and restarted by
 *   `createSidecar` (the client connects through `sidecar.connect`);
 * - **service**: a child process listening on a loopback WebSocket port with a token; the client
 *   connects with `webSocketConnector(url, { token })`. Here the manager supervises that process
 *   itself (restarting it on the same port when it dies); in production it would run on its own.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Transport } from '@lockstep/core';
import { readTokenFile } from '@lockstep/server';
import { createSidecar, type SidecarEvent } from '@lockstep/stdio';
import { webSocketConnector } from '@lockstep/ws';
import { say, short } from './report.js';

export const ORCHESTRATOR_FILE = fileURLToPath(new URL('./orchestrator.ts', import.meta.url));
/** tsx by absolute URL: `--import tsx` would resolve from the working directory. */
const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

/** `node … orchestrator.ts …args`, from the TypeScript sources of the workspace (as `pnpm sidecar` runs). */
export function orchestratorArgs(...args: string[]): string[] {
  return ['--conditions=lockstep-source', '--import', TSX, ORCHESTRATOR_FILE, ...args];
}

export type Mode = 'sidecar' | 'service';

export interface Orchestrator {
  readonly mode: Mode;
  /** For `createClient({ connect })`. */
  readonly connect: () => Transport | Promise<Transport>;
  /** Service mode: the WebSocket URL and the token it requires. */
  readonly url?: string;
  readonly token?: string;
  /** The pid of the orchestrator serving now (waits while one is starting). */
  pid(): Promise<number>;
  /** Stops it (SIGTERM, then SIGKILL) and resolves once it is gone. */
  close(): Promise<void>;
}

/** Where the launchers report what happens (who, what): printed by default. */
export type Log = (who: string, line: string) => void;

/** Starts the orchestrator on the file store in `dataDir`. */
export async function startOrchestrator(mode: Mode, dataDir: string, log: Log = say): Promise<Orchestrator> {
  return mode === 'sidecar' ? startSidecar(['--data', dataDir], 'sidecar', log) : startService(dataDir, log);
}

/** Sidecar mode: `createSidecar` spawns the orchestrator on the first `connect()` and restarts it when it dies. */
export function startSidecar(args: string[], label = 'sidecar', log: Log = say): Orchestrator {
  const sidecar = createSidecar({
    command: process.execPath,
    args: orchestratorArgs(...args),
    restart: { initialMs: 200, maxMs: 2_000 },
    stderr: (text) => {
      for (const line of text.trimEnd().split('\n')) log('orchestrator', line);
    },
  });
  sidecar.events.subscribe((event) => {
    const line = describeSidecarEvent(event);
    if (line) log(label, line);
  });
  return {
    mode: 'sidecar',
    connect: sidecar.connect,
    pid: async () => (await sidecar.negotiate()).pid,
    close: () => sidecar.close(),
  };
}

function describeSidecarEvent(event: SidecarEvent): string | undefined {
  switch (event.type) {
    case 'spawned':
      return `spawned the orchestrator, pid ${event.pid}${event.restarts > 0 ? ` (restart ${event.restarts})` : ''}`;
    case 'negotiated':
      return `pid ${event.info.pid} answered hello: protocol ${event.info.protocol}, epoch ${short(event.info.epoch)}`;
    case 'exited':
      return `pid ${event.pid} ${event.signal ? `was killed by ${event.signal}` : `exited with code ${event.code}`}${event.expected ? '' : ' (unexpected)'}`;
    case 'restarting':
      return `restarts it in ${event.delayMs} ms`;
    case 'unhealthy':
      return `pid ${event.pid} is unhealthy: ${event.reason}`;
    case 'protocolError':
      return `unreadable frame from pid ${event.pid}: ${event.error.message}`;
    case 'unavailable':
      return `unavailable (${event.error.reason}): ${event.error.message}`;
    case 'closed':
      return undefined;
  }
}

/**
 * Service mode: the orchestrator listens on a loopback port (a free one the first time, the same one
 * after a restart) and requires a token — `LOCKSTEP_TOKEN` when the manager has one, else the one the
 * orchestrator generated into its data directory (mode 0600), as `lockstep serve` does.
 */
async function startService(dataDir: string, log: Log): Promise<Orchestrator> {
  const supervisor = new ServiceSupervisor(dataDir, log);
  let port: number;
  let token: string | undefined;
  try {
    port = await supervisor.start();
    token = process.env['LOCKSTEP_TOKEN'] || (await readTokenFile(join(dataDir, 'token')));
    if (!token) throw new Error(`the orchestrator left no token in ${join(dataDir, 'token')}`);
  } catch (error) {
    await supervisor.close();
    throw error;
  }
  const url = `ws://127.0.0.1:${port}`;
  return {
    mode: 'service',
    url,
    token,
    // The token goes in the upgrade request (the `lockstep.bearer.*` subprotocol entry).
    connect: webSocketConnector(url, { token }),
    pid: () => supervisor.pid(),
    close: () => supervisor.close(),
  };
}

const READY_LINE = /listening on ws:\/\/127\.0\.0\.1:(\d+)/;
const RESTART_DELAY_MS = 200;
const MAX_RESTARTS = 5;

/** Runs the service-mode orchestrator and restarts it, on the same port, when it dies unasked. */
class ServiceSupervisor {
  #child: ChildProcess | undefined;
  #port = 0;
  #current: Promise<number> | undefined;
  #restarts = 0;
  /** Some child has listened: only then is a death a crash to restart after (not a failure to start). */
  #started = false;
  #closed = false;

  constructor(
    private readonly dataDir: string,
    private readonly log: Log,
  ) {}

  /** Spawns the first process; resolves with its port once it listens. */
  async start(): Promise<number> {
    this.#current = this.#spawn();
    await this.#current;
    return this.#port;
  }

  /** The pid of the process serving now, or of the next one once it listens. */
  pid(): Promise<number> {
    return this.#current ?? Promise.reject(new Error('not started'));
  }

  #spawn(): Promise<number> {
    const child = spawn(process.execPath, orchestratorArgs('--data', this.dataDir, '--ws', '--port', String(this.#port)), {
      // stdin stays open: the orchestrator stops when it closes, so it never outlives the manager.
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    this.#child = child;
    child.stdin.on('error', () => {});
    this.log('service', `spawned the orchestrator, pid ${child.pid}${this.#restarts > 0 ? ` (restart ${this.#restarts})` : ''}`);
    return new Promise<number>((resolve, reject) => {
      createInterface({ input: child.stderr }).on('line', (line) => {
        this.log('orchestrator', line);
        const ready = READY_LINE.exec(line);
        if (ready) {
          this.#port = Number(ready[1]);
          this.#started = true;
          resolve(child.pid!);
        }
      });
      child.once('error', reject);
      child.once('exit', (code, signal) => {
        reject(new Error(`the orchestrator exited before it listened (${signal ?? `code ${code}`})`));
        if (this.#closed || !this.#started || this.#child !== child) return;
        this.log('service', `pid ${child.pid} ${signal ? `was killed by ${signal}` : `exited with code ${code}`} (unexpected)`);
        if (this.#restarts >= MAX_RESTARTS) {
          this.log('service', `gave up after ${this.#restarts} restarts`);
          return;
        }
        this.#restarts++;
        this.log('service', `restarts it in ${RESTART_DELAY_MS} ms on port ${this.#port}`);
        this.#current = sleep(RESTART_DELAY_MS).then(() => (this.#closed ? Promise.reject(new Error('closed')) : this.#spawn()));
        this.#current.catch(() => {});
      });
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
    await exited;
    clearTimeout(timer);
  }
}
