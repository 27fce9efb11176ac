import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TOKEN_HOLDER, announceToken, findAnnouncedToken, loadServerToken, runtimeDirectory, tokenAuthenticator, tokenMatches } from './serverToken.js';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'lockstep-token-'));
  dirs.push(dir);
  return dir;
}
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

describe('server tokens', () => {
  it('generates a 256-bit token into a 0600 file in a 0700 directory, whatever the umask, and reads it back next time', async () => {
    const dir = await tempDir();
    const file = join(dir, 'state', 'token');
    const previous = process.umask(0);
    let first;
    try {
      first = await loadServerToken({ env: {}, defaultFile: file });
    } finally {
      process.umask(previous);
    }
    expect(first.source).toBe('generated');
    expect(first.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'state'))).mode & 0o777).toBe(0o700);
    const again = await loadServerToken({ env: {}, defaultFile: file });
    expect(again).toEqual({ token: first.token, source: 'file', file });
    expect((await loadServerToken({ env: {}, defaultFile: join(dir, 'other') })).token).not.toBe(first.token);
  });

  it('prefers the option, then LOCKSTEP_TOKEN, then the named file', async () => {
    const dir = await tempDir();
    const named = join(dir, 'named');
    await writeFile(named, 'from-the-named-file-0123\n');
    const defaultFile = join(dir, 'default');
    expect(await loadServerToken({ token: 'from-the-option-0123456', env: { LOCKSTEP_TOKEN: 'from-the-env-0123456789' }, defaultFile })).toEqual({
      token: 'from-the-option-0123456',
      source: 'option',
    });
    expect(await loadServerToken({ env: { LOCKSTEP_TOKEN: 'from-the-env-0123456789' }, tokenFile: named, defaultFile })).toEqual({
      token: 'from-the-env-0123456789',
      source: 'environment',
    });
    expect(await loadServerToken({ env: { LOCKSTEP_TOKEN: '' }, tokenFile: named, defaultFile })).toEqual({
      token: 'from-the-named-file-0123',
      source: 'file',
      file: named,
    });
    await expect(stat(defaultFile)).rejects.toThrow(/ENOENT/);
  });

  it('refuses a guessable token', async () => {
    const dir = await tempDir();
    await expect(loadServerToken({ env: { LOCKSTEP_TOKEN: 'short' }, defaultFile: join(dir, 't') })).rejects.toMatchObject({ code: 'INVALID_PARAMS' });
    await expect(loadServerToken({ token: 'has a space in it 0123', env: {}, defaultFile: join(dir, 't') })).rejects.toMatchObject({ code: 'INVALID_PARAMS' });
  });

  it('matches only the exact token', () => {
    const token = 'the-token-0123456789abcdef';
    expect(tokenMatches(token, token)).toBe(true);
    for (const other of [undefined, '', 'the-token-0123456789abcdeF', `${token}x`, token.slice(0, -1)]) expect(tokenMatches(token, other)).toBe(false);
    const authenticate = tokenAuthenticator(token);
    expect(authenticate({ token })).toEqual(TOKEN_HOLDER);
    expect(authenticate({ token: 'nope' })).toBeUndefined();
    expect(authenticate({})).toBeUndefined();
  });

  it('announces a token per port for local clients and withdraws it, unless another server took the port', async () => {
    const runtime = await tempDir();
    const withdraw = await announceToken(7420, 'announced-token-0123456', runtime);
    expect(await findAnnouncedToken(7420, runtime)).toBe('announced-token-0123456');
    expect((await stat(join(runtime, 'servers', '7420.token'))).mode & 0o777).toBe(0o600);
    expect(await findAnnouncedToken(7421, runtime)).toBeUndefined();
    await withdraw();
    expect(await findAnnouncedToken(7420, runtime)).toBeUndefined();

    const stale = await announceToken(7420, 'first-server-0123456789', runtime);
    await announceToken(7420, 'second-server-012345678', runtime);
    await stale();
    expect(await readFile(join(runtime, 'servers', '7420.token'), 'utf8')).toBe('second-server-012345678\n');
  });

  it('finds the runtime directory from the environment', () => {
    expect(runtimeDirectory({ LOCKSTEP_RUNTIME_DIR: '/r', XDG_RUNTIME_DIR: '/x' })).toBe('/r');
    expect(runtimeDirectory({ XDG_RUNTIME_DIR: '/x' })).toBe(join('/x', 'lockstep'));
    expect(runtimeDirectory({})).toMatch(/\.lockstep[/\\]run$/);
  });
});
