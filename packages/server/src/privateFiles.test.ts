import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { writePrivateFile } from './privateFiles.js';

const root = mkdtempSync(join(tmpdir(), 'lockstep-private-files-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const modeOf = (path: string) => (statSync(path).mode & 0o777).toString(8);

describe('writePrivateFile', () => {
  it('writes 0600 in new 0700 directories whatever the umask, and leaves an existing parent alone', async () => {
    const previous = process.umask(0);
    onTestFinished(() => {
      process.umask(previous);
    });
    const path = join(root, 'a', 'b', 'token');
    await writePrivateFile(path, 'secret\n');
    expect(readFileSync(path, 'utf8')).toBe('secret\n');
    expect([modeOf(join(root, 'a')), modeOf(join(root, 'a', 'b')), modeOf(path)]).toEqual(['700', '700', '600']);

    const shared = join(root, 'shared');
    mkdirSync(shared, { mode: 0o755 });
    await writePrivateFile(join(shared, 'token'), new TextEncoder().encode('bytes'));
    expect([modeOf(shared), modeOf(join(shared, 'token'))]).toEqual(['755', '600']);
    expect(readFileSync(join(shared, 'token'), 'utf8')).toBe('bytes');
  });

  it('replaces an existing file atomically, which ends up 0600 even if it was 0644, leaving no temporary file', async () => {
    const directory = join(root, 'replace');
    mkdirSync(directory);
    const path = join(directory, 'token');
    writeFileSync(path, 'old');
    chmodSync(path, 0o644);
    await writePrivateFile(path, 'new');
    expect(readFileSync(path, 'utf8')).toBe('new');
    expect(modeOf(path)).toBe('600');
    expect(readdirSync(directory)).toEqual(['token']);
  });
});
