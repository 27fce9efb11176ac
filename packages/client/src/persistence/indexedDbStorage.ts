import { toPlainState } from '@lockstep/core';
import type { ClientStorage } from './clientStorage.js';
import { PersistenceError } from './PersistenceError.js';

/**
 * The parts of IndexedDB this adapter uses, typed here: the client compiles without the DOM lib
 * (a browser's `indexedDB`, or `fake-indexeddb`'s, fits these shapes).
 */
export interface IdbFactoryLike {
  open(name: string, version?: number): IdbOpenRequestLike;
  deleteDatabase?(name: string): unknown;
}
export interface IdbRequestLike<T> {
  readonly result: T;
  readonly error: unknown;
  onsuccess: ((this: any, event: any) => any) | null;
  onerror: ((this: any, event: any) => any) | null;
}
export interface IdbOpenRequestLike extends IdbRequestLike<IdbDatabaseLike> {
  onupgradeneeded: ((this: any, event: any) => any) | null;
  onblocked: ((this: any, event: any) => any) | null;
}
export interface IdbDatabaseLike {
  readonly objectStoreNames: { contains(name: string): boolean };
  createObjectStore(name: string): unknown;
  transaction(names: string, mode: 'readonly' | 'readwrite'): IdbTransactionLike;
  close(): void;
  onversionchange: ((this: any, event: any) => any) | null;
}
export interface IdbTransactionLike {
  objectStore(name: string): IdbObjectStoreLike;
  readonly error: unknown;
  oncomplete: ((this: any, event: any) => any) | null;
  onerror: ((this: any, event: any) => any) | null;
  onabort: ((this: any, event: any) => any) | null;
}
export interface IdbObjectStoreLike {
  getAll(): IdbRequestLike<unknown[]>;
  getAllKeys(): IdbRequestLike<unknown[]>;
  put(value: unknown, key: string): unknown;
  delete(key: string): unknown;
  clear(): unknown;
}
interface LockManagerLike {
  request(name: string, options: { ifAvailable: boolean }, callback: (lock: unknown) => Promise<void> | null): Promise<unknown>;
}

export interface IndexedDbStorageOptions {
  /** The database's name. Two clients of one origin that run at once need two names. Default `lockstep`. */
  name?: string;
  /** Default: the global `indexedDB`. */
  indexedDB?: IdbFactoryLike;
  /**
   * Take the database for this tab with a Web Lock, so that two tabs never overwrite each other's
   * pending commands: a second tab's client gets LOCKED and runs in memory. Default true (where
   * `navigator.locks` exists).
   */
  exclusive?: boolean;
}

export const INDEXED_DB_DEFAULTS = { name: 'lockstep' } as const;
const STORE = 'records';
const DB_VERSION = 1;

/**
 * A client's storage in IndexedDB (browsers): one object store, a record per key; each `save` is
 * one transaction, so a tab closed or killed during it leaves every record as it was before.
 */
export function indexedDbStorage(options: IndexedDbStorageOptions = {}): ClientStorage {
  return new IndexedDbStorage(options);
}

class IndexedDbStorage implements ClientStorage {
  readonly #name: string;
  readonly #factory: IdbFactoryLike | undefined;
  readonly #exclusive: boolean;
  #db: Promise<IdbDatabaseLike> | undefined;
  #unlock: (() => void) | undefined;

  constructor(options: IndexedDbStorageOptions) {
    this.#name = options.name ?? INDEXED_DB_DEFAULTS.name;
    this.#factory = options.indexedDB ?? (globalThis as { indexedDB?: IdbFactoryLike }).indexedDB;
    this.#exclusive = options.exclusive ?? true;
  }

  async load(): Promise<{ records: Map<string, unknown>; problems: Error[] }> {
    await this.#lock();
    const db = await this.#open();
    return wrap(async () => {
      const tx = db.transaction(STORE, 'readonly');
      const store = tx.objectStore(STORE);
      const [keys, values] = await Promise.all([request(store.getAllKeys()), request(store.getAll())]);
      const records = new Map<string, unknown>();
      keys.forEach((key, i) => {
        if (typeof key === 'string') records.set(key, values[i]);
      });
      return { records, problems: [] };
    });
  }

  async save(changes: ReadonlyMap<string, unknown>): Promise<void> {
    const db = await this.#open();
    await wrap(() =>
      transact(db, (store) => {
        for (const [key, value] of changes) {
          if (value === undefined) store.delete(key);
          // IndexedDB structured-clones what it stores, and a clone refuses the Proxy of a persistent
          // record (a state's large records, docs/domains.md "Large states"): stored as plain objects.
          else store.put(toPlainState(value), key);
        }
      }),
    );
  }

  async clear(): Promise<void> {
    const db = await this.#open();
    await wrap(() => transact(db, (store) => store.clear()));
  }

  async close(): Promise<void> {
    const db = this.#db;
    this.#db = undefined;
    if (db) (await db.catch(() => undefined))?.close();
    this.#unlock?.();
    this.#unlock = undefined;
  }

  #open(): Promise<IdbDatabaseLike> {
    this.#db ??= wrap(
      () =>
        new Promise<IdbDatabaseLike>((resolve, reject) => {
          if (!this.#factory) throw new PersistenceError('UNAVAILABLE', 'IndexedDB is not available here');
          const opening = this.#factory.open(this.#name, DB_VERSION);
          opening.onupgradeneeded = () => {
            if (!opening.result.objectStoreNames.contains(STORE)) opening.result.createObjectStore(STORE);
          };
          opening.onsuccess = () => {
            const db = opening.result;
            // Another tab upgrading the database (a newer release): give way rather than block it.
            db.onversionchange = () => db.close();
            resolve(db);
          };
          opening.onerror = () => reject(idbError(opening.error, 'opening the database failed'));
          opening.onblocked = () => reject(new PersistenceError('LOCKED', `IndexedDB database ${this.#name} is blocked by another tab`));
        }),
    );
    return this.#db;
  }

  /** Holds a Web Lock named after the database until closed; LOCKED if another tab holds it. */
  async #lock(): Promise<void> {
    const locks = (globalThis as { navigator?: { locks?: LockManagerLike } }).navigator?.locks;
    if (!this.#exclusive || !locks || this.#unlock) return;
    const held = await new Promise<boolean>((resolve, reject) => {
      locks
        .request(`lockstep:${this.#name}`, { ifAvailable: true }, (lock) => {
          if (!lock) {
            resolve(false);
            return null;
          }
          resolve(true);
          return new Promise<void>((release) => (this.#unlock = release));
        })
        .catch(reject);
    });
    if (!held) throw new PersistenceError('LOCKED', `IndexedDB database ${this.#name} is in use by another tab`);
  }
}

function request<T>(req: IdbRequestLike<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(idbError(req.error, 'a request failed'));
  });
}

function transact(db: IdbDatabaseLike, work: (store: IdbObjectStoreLike) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const tx = db.transaction(STORE, 'readwrite');
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(idbError(tx.error, 'a transaction failed'));
    tx.onabort = () => reject(idbError(tx.error, 'a transaction was aborted'));
    work(tx.objectStore(STORE));
  });
}

async function wrap<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw PersistenceError.from(error);
  }
}

/** The error IndexedDB reported (a DOMException, an Error), or one saying what failed when it reported none. */
function idbError(error: unknown, what: string): Error {
  return error instanceof Error || (typeof error === 'object' && error !== null && 'name' in error && 'message' in error)
    ? (error as Error)
    : new PersistenceError('UNAVAILABLE', `IndexedDB: ${what}`);
}
