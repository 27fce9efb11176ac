import type { SpawnOptions } from './spawnPolicy.js';
import type { Terminal } from './terminal.js';

/** A spawn waiting for a terminal slot, as {@link TerminalManager.waiting} describes it. */
export interface WaitingSpawn {
  /** The terminal's id. */
  readonly id: string;
  /** Who the terminal is for (see `SpawnPlacement.owner`), if the spawner said. */
  readonly owner: string | undefined;
  /** 1 for the next spawn to start. */
  readonly position: number;
  /** When it started waiting (the manager's clock). */
  readonly since: number;
}

interface Entry {
  readonly id: string;
  readonly owner: string | undefined;
  readonly since: number;
  readonly options: SpawnOptions;
  resolve: (terminal: Terminal) => void;
  reject: (error: unknown) => void;
}

/** Spawns waiting for a slot, first come first served; each id at most once. */
export class SpawnQueue {
  readonly #entries: Entry[] = [];

  get length(): number {
    return this.#entries.length;
  }

  has(id: string): boolean {
    return this.#entries.some((entry) => entry.id === id);
  }

  /** Queues a spawn; the promise settles when it is started (or fails to), removed or refused. */
  push(id: string, owner: string | undefined, since: number, options: SpawnOptions): Promise<Terminal> {
    return new Promise((resolve, reject) => this.#entries.push({ id, owner, since, options, resolve, reject }));
  }

  peek(): Entry | undefined {
    return this.#entries[0];
  }

  shift(): Entry | undefined {
    return this.#entries.shift();
  }

  /** Takes a waiting spawn out of the line (its promise is the caller's to settle). */
  take(id: string): Entry | undefined {
    const index = this.#entries.findIndex((entry) => entry.id === id);
    return index < 0 ? undefined : this.#entries.splice(index, 1)[0];
  }

  /** Empties the line, answering what was in it. */
  clear(): Entry[] {
    return this.#entries.splice(0, this.#entries.length);
  }

  countOwner(owner: string): number {
    return this.#entries.reduce((count, entry) => count + (entry.owner === owner ? 1 : 0), 0);
  }

  list(): WaitingSpawn[] {
    return this.#entries.map((entry, index) => ({ id: entry.id, owner: entry.owner, position: index + 1, since: entry.since }));
  }

  find(id: string): WaitingSpawn | undefined {
    const index = this.#entries.findIndex((entry) => entry.id === id);
    const entry = this.#entries[index];
    return entry === undefined ? undefined : { id: entry.id, owner: entry.owner, position: index + 1, since: entry.since };
  }
}
