import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

/** The token every `lockstep serve` these suites spawn requires (given as `LOCKSTEP_TOKEN`). */
export const SERVE_TOKEN = 'serve-test-token-0123456789';

/**
 * This test file's runtime directory, removed with what killed hubs left in it once the file's tests
 * are over (a worker process is ended without its `exit` event, so that alone left them behind).
 */
const RUNTIME_DIR = join(tmpdir(), `lockstep-test-runtime-${process.pid}-${randomUUID().slice(0, 8)}`);
const removeRuntimeDir = () => rmSync(RUNTIME_DIR, { recursive: true, force: true });
afterAll(removeRuntimeDir);
process.once('exit', removeRuntimeDir);

/**
 * The environment of a `lockstep serve` (or client command) process in a test: the test token, and a
 * runtime directory of this test process's own, so no token is left in the user's.
 */
export function serveEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, LOCKSTEP_TOKEN: SERVE_TOKEN, LOCKSTEP_RUNTIME_DIR: RUNTIME_DIR, ...extra };
}
