import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile, unlink } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { LockstepError } from '@lockstep/core';
import type { Identity } from './identity.js';
import { writePrivateFile } from './privateFiles.js';

/** The environment variable a server takes its token from, and a client presents. */
export const TOKEN_ENV = 'LOCKSTEP_TOKEN';
/** The environment variable naming the per-user runtime directory (see {@link runtimeDirectory}). */
export const RUNTIME_DIR_ENV = 'LOCKSTEP_RUNTIME_DIR';
/** Bytes of randomness in a generated token (256 bits, 43 base64url characters). */
export const GENERATED_TOKEN_BYTES = 32;
/** Shortest token a server accepts from its configuration: anything shorter is guessable. */
export const MIN_TOKEN_LENGTH = 16;

/** The identity of whoever presents the server's shared token. */
export const TOKEN_HOLDER: Identity = { id: 'token-holder' };

/** The environment variables the token helpers read (`process.env` has them all). */
export interface TokenEnv {
  readonly LOCKSTEP_TOKEN?: string | undefined;
  readonly LOCKSTEP_RUNTIME_DIR?: string | undefined;
  readonly XDG_RUNTIME_DIR?: string | undefined;
}

/** Where a server's token came from. */
export type ServerTokenSource = 'option' | 'environment' | 'file' | 'generated';

export interface ServerToken {
  readonly token: string;
  readonly source: ServerTokenSource;
  /** The 0600 file that holds it (a file given or a generated token's); undefined for option and environment. */
  readonly file?: string;
}

export interface LoadServerTokenOptions {
  /** A token given in code: used as it is. */
  token?: string | undefined;
  /** The environment to read `LOCKSTEP_TOKEN` from. Default: process.env. */
  env?: TokenEnv;
  /** `--token-file PATH`: read it (a token is generated into it when it does not exist). */
  tokenFile?: string | undefined;
  /** Where a generated token is kept when no file is named (read back on the next start). */
  defaultFile: string;
}

/**
 * The token a server requires, in order: `token`, `LOCKSTEP_TOKEN`, `tokenFile`, else the token kept
 * in `defaultFile` — generated (256 random bits) and written there with mode 0600 the first time.
 * A token shorter than {@link MIN_TOKEN_LENGTH} characters is refused.
 */
export async function loadServerToken(options: LoadServerTokenOptions): Promise<ServerToken> {
  const env = options.env ?? process.env;
  if (options.token !== undefined) return { token: checkToken(options.token, 'the token option'), source: 'option' };
  const fromEnv = env.LOCKSTEP_TOKEN;
  if (fromEnv !== undefined && fromEnv !== '') return { token: checkToken(fromEnv, TOKEN_ENV), source: 'environment' };
  const file = options.tokenFile ?? options.defaultFile;
  const existing = await readTokenFile(file);
  if (existing !== undefined) return { token: checkToken(existing, file), source: 'file', file };
  const token = generateToken();
  await writePrivateFile(file, `${token}\n`);
  return { token, source: 'generated', file };
}

/** A fresh random token: 256 bits, base64url. */
export function generateToken(): string {
  return randomBytes(GENERATED_TOKEN_BYTES).toString('base64url');
}

/**
 * Whether `presented` is `expected`, in time that does not depend on where they differ: both are
 * hashed first, so neither their contents nor the expected length leak through timing.
 */
export function tokenMatches(expected: string, presented: string | undefined): boolean {
  if (presented === undefined) return false;
  const a = createHash('sha256').update(expected, 'utf8').digest();
  const b = createHash('sha256').update(presented, 'utf8').digest();
  return timingSafeEqual(a, b);
}

/**
 * An `authenticate` hook (for `Hub` or the WebSocket server) that accepts the shared token and
 * answers {@link TOKEN_HOLDER}; anything else is refused.
 */
export function tokenAuthenticator(expected: string): (request: { token?: string | undefined }) => Identity | undefined {
  return (request) => (tokenMatches(expected, request.token) ? TOKEN_HOLDER : undefined);
}

/**
 * The per-user directory where local servers leave their tokens for local clients (mode 0700):
 * `$LOCKSTEP_RUNTIME_DIR`, else `$XDG_RUNTIME_DIR/lockstep`, else `~/.lockstep/run`.
 */
export function runtimeDirectory(env: TokenEnv = process.env): string {
  const explicit = env.LOCKSTEP_RUNTIME_DIR;
  if (explicit) return explicit;
  const xdg = env.XDG_RUNTIME_DIR;
  if (xdg) return join(xdg, 'lockstep');
  return join(homedir(), '.lockstep', 'run');
}

/** The file in which the server on a local port leaves its token: `<runtime>/servers/<port>.token`. */
export function announcedTokenFile(port: number, runtimeDir: string): string {
  return join(runtimeDir, 'servers', `${port}.token`);
}

/**
 * Leaves the token of a server listening on `port` where local clients of the same user find it
 * (`lockstep task …` against `127.0.0.1:<port>`), mode 0600 in a 0700 directory. Returns a function
 * that removes it again (when the server stops), unless another server has taken the port since.
 */
export async function announceToken(port: number, token: string, runtimeDir: string): Promise<() => Promise<void>> {
  const file = announcedTokenFile(port, runtimeDir);
  await writePrivateFile(file, `${token}\n`);
  return async () => {
    if ((await readTokenFile(file).catch(() => undefined)) === token) await unlink(file).catch(() => {});
  };
}

/** The token a local server on `port` announced, if any (for clients; never throws). */
export async function findAnnouncedToken(port: number, runtimeDir: string): Promise<string | undefined> {
  return readTokenFile(announcedTokenFile(port, runtimeDir)).catch(() => undefined);
}

/** A token file's content without its trailing newline; undefined when the file does not exist. */
export async function readTokenFile(file: string): Promise<string | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new LockstepError('INVALID_PARAMS', `cannot read the token file ${file}: ${(error as Error).message}`, { file });
  }
  const token = text.trim();
  return token === '' ? undefined : token;
}

function checkToken(token: string, where: string): string {
  if (token.length < MIN_TOKEN_LENGTH || /\s/.test(token)) {
    throw new LockstepError('INVALID_PARAMS', `the token from ${where} must be at least ${MIN_TOKEN_LENGTH} characters without spaces`, {
      minLength: MIN_TOKEN_LENGTH,
    });
  }
  return token;
}
