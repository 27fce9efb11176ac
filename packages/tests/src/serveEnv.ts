import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The token every `lockstep serve` these suites spawn requires (given as `LOCKSTEP_TOKEN`). */
export const SERVE_TOKEN = 'serve-test-token-0123456789';

/** This test process's runtime directory: removed when the process exits, with what killed hubs left in it. */
const RUNTIME_DIR = join(tmpdir(), `lockstep-test-runtime-${process.pid}`);
process.once('exit', () => rmSync(RUNTIME_DIR, { recursive: true, force: true }));

/**
 * The environment of a `lockstep serve` (or client command) process in a test: the test token, and a
 * runtime directory of this test process's own, so no token is left in the user's.
 */
export function serveEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, LOCKSTEP_TOKEN: SERVE_TOKEN, LOCKSTEP_RUNTIME_DIR: RUNTIME_DIR, ...extra };
}
