import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

/**
 * The reference server as a process, the way `pnpm start` runs it — for the end-to-end test and the
 * screenshots script, which drive it from outside like a user does.
 */

const require = createRequire(import.meta.url);
const TSX = pathToFileURL(require.resolve('tsx')).href;
const SERVER_MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));
const STOP_TIMEOUT_MS = 10_000;
const START_TIMEOUT_MS = 30_000;

/** `[command, args]` running a TypeScript entry point from the sources, as the root scripts do. */
export const tsxNode = (main: string, args: readonly string[]) => [process.execPath, ['--conditions=lockstep-source', '--import', TSX, main, ...args]] as const;

export interface ServerProcess {
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** The login URL it printed (`/login#<token>`). */
  loginUrl: string;
  /** Its token, from the login URL. */
  token: string;
  /** Everything it printed so far. */
  output(): string;
  /** SIGTERM, then SIGKILL if it has not exited within 10 s. */
  stop(): Promise<void>;
}

/**
 * Starts `main.ts --port 0 --data <dataDir>` (plus `args`) in `cwd` with `env`; resolves once it
 * has printed its URL and login URL.
 */
export async function spawnReferenceServer(options: {
  dataDir: string;
  cwd: string;
  env: NodeJS.ProcessEnv;
  args?: readonly string[];
}): Promise<ServerProcess> {
  const [command, args] = tsxNode(SERVER_MAIN, ['--port', '0', '--data', options.dataDir, ...(options.args ?? [])]);
  const child = spawn(command, args, { cwd: options.cwd, stdio: 'pipe', env: options.env });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    let timer: ReturnType<typeof setTimeout> | undefined;
    const stopped = await Promise.race([
      exited.then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), STOP_TIMEOUT_MS))),
    ]);
    clearTimeout(timer);
    if (!stopped) child.kill('SIGKILL');
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const [url, loginUrl] = await new Promise<[string, string]>((resolve, reject) => {
      const look = () => {
        const match = /on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
        const login = /Open the dashboard: (\S+)/.exec(output);
        if (match && login) resolve([match[1]!, login[1]!]);
      };
      child.stdout.on('data', look);
      void exited.then((code) => reject(new Error(`the server exited (${code}) before printing its URL:\n${output}`)));
      timer = setTimeout(() => reject(new Error(`the server printed no URL within ${START_TIMEOUT_MS / 1000} s:\n${output}`)), START_TIMEOUT_MS);
    });
    return { url, loginUrl, token: decodeURIComponent(new URL(loginUrl).hash.slice(1)), output: () => output, stop };
  } catch (error) {
    await stop();
    throw error;
  } finally {
    clearTimeout(timer);
  }
}
