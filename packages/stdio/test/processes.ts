/** Child processes for the stdio tests: spawned from TypeScript sources, tracked, and killed by pid. */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

const require = createRequire(import.meta.url);
/** `--import tsx` resolves from the working directory; an absolute URL works from anywhere. */
const TSX = pathToFileURL(require.resolve('tsx')).href;

export const fixtures = {
  hubChild: fileURLToPath(new URL('./fixtures/hubChild.ts', import.meta.url)),
  refusingChild: fileURLToPath(new URL('./fixtures/refusingChild.ts', import.meta.url)),
  echoChild: fileURLToPath(new URL('./fixtures/echoChild.ts', import.meta.url)),
};

/** Arguments for `process.execPath` that run a TypeScript file against the workspace sources. */
export function tsArgs(file: string): string[] {
  return ['--conditions=lockstep-source', '--import', TSX, file];
}

const started = new Set<ChildProcessWithoutNullStreams>();

/** Spawns `node <args>` with piped stdio; `killStarted()` ends it if the test has not. */
export function spawnNode(args: string[], env: Record<string, string> = {}): ChildProcessWithoutNullStreams {
  const child = spawn(process.execPath, args, { stdio: 'pipe', env: { ...process.env, ...env } });
  started.add(child);
  child.once('exit', () => started.delete(child));
  // A test may leave a pipe broken on purpose; that must never become an unhandled error.
  child.on('error', () => {});
  for (const stream of [child.stdin, child.stdout, child.stderr]) stream.on('error', () => {});
  return child;
}

/** A process that copies its stdin to its stdout: one end of a real OS pipe pair. */
export function spawnRelay(): ChildProcessWithoutNullStreams {
  return spawnNode(['-e', 'process.stdin.pipe(process.stdout)']);
}

/** Kills (SIGKILL, by pid) every process spawned by these helpers that is still running, and waits for each to exit. */
export async function killStarted(): Promise<void> {
  const running = [...started];
  await Promise.all(running.map((child) => killAndWait(child)));
}

export function killAndWait(child: ChildProcessWithoutNullStreams): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    try {
      process.kill(child.pid!, 'SIGKILL');
    } catch {
      resolve();
    }
  });
}

/** True while a process with this pid exists (signal 0 probes without killing). */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw error;
  }
}

/** Collects a child's stderr as text. */
export function collectStderr(child: ChildProcessWithoutNullStreams): { text(): string } {
  let text = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => (text += chunk));
  return { text: () => text };
}
