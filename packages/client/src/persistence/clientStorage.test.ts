import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { memoryStorage, type ClientStorage } from './clientStorage.js';
import { fileStorage } from './fileStorage.js';
import { PersistenceError } from './PersistenceError.js';

/** One behaviour suite, every storage adapter (IndexedDB's runs in Chromium: packages/tests/src/offlineBrowser.test.ts). */
const work = mkdtempSync(join(tmpdir(), 'lockstep-client-storage-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
let folders = 0;

const adapters: Array<[string, () => ClientStorage]> = [
  ['memory', () => memoryStorage()],
  ['file', () => fileStorage({ directory: join(work, `s${folders++}`) })],
];

describe.each(adapters)('%s storage', (_, make) => {
  it('stores, replaces and deletes records by key, and loads them back', async () => {
    const storage = make();
    expect((await storage.load()).records.size).toBe(0);
    await storage.save(
      new Map<string, unknown>([
        ['client', { format: 1, clientId: 'c1' }],
        ['stream/tasks/p:1', { format: 1, n: [1, 2] }],
      ]),
    );
    await storage.save(
      new Map<string, unknown>([
        ['stream/tasks/p:1', { format: 1, n: [3] }],
        ['stream/x/y', { a: 'é✓' }],
      ]),
    );
    await storage.save(new Map<string, unknown>([['stream/x/y', undefined]]));
    const { records, problems } = await storage.load();
    expect(problems).toEqual([]);
    expect(Object.fromEntries(records)).toEqual({ client: { format: 1, clientId: 'c1' }, 'stream/tasks/p:1': { format: 1, n: [3] } });
    await storage.clear();
    expect((await storage.load()).records.size).toBe(0);
    await storage.close();
  });
});

describe('file storage', () => {
  it('ignores (and reports) a damaged file and a newer container, keeps the rest, and removes interrupted writes', async () => {
    const directory = join(work, 'damaged');
    const storage = fileStorage({ directory });
    await storage.load();
    await storage.save(
      new Map<string, unknown>([
        ['a', { format: 1, v: 1 }],
        ['b', { format: 1, v: 2 }],
        ['c', { format: 1, v: 3 }],
      ]),
    );
    await storage.close();
    const file = (key: string) => join(directory, `${key}.lockstep`);
    const damaged = readFileSync(file('a'));
    damaged[damaged.length - 2]! ^= 1;
    writeFileSync(file('a'), damaged);
    writeFileSync(file('b'), readFileSync(file('b'), 'latin1').replace('lockstep-client 1 ', 'lockstep-client 2 '), 'latin1');
    writeFileSync(`${file('c')}.tmp-0a1b2c`, 'half a wri');
    const { records, problems } = await fileStorage({ directory }).load();
    expect(Object.fromEntries(records)).toEqual({ c: { format: 1, v: 3 } });
    expect(problems.map((problem) => (problem as PersistenceError).code).sort()).toEqual(['CORRUPT', 'UNSUPPORTED_FORMAT']);
    expect(readdirSync(directory).filter((name) => name.includes('.tmp-'))).toEqual([]);
  });

  it('refuses a folder another live process holds (LOCKED), and takes one whose holder is gone', async () => {
    const directory = join(work, 'locked');
    await fileStorage({ directory }).load();
    writeFileSync(join(directory, 'lock'), `${process.ppid}\n`);
    await expect(fileStorage({ directory }).load()).rejects.toMatchObject({ code: 'LOCKED' });
    writeFileSync(join(directory, 'lock'), '2147483646\n');
    const storage = fileStorage({ directory });
    await expect(storage.load()).resolves.toMatchObject({ problems: [] });
    await storage.close();
  });
});
