/**
 * `pnpm start`: the reference server, until Ctrl-C. See docs/reference-server.md.
 */
import { USAGE, UsageError, parseMainOptions, type MainOptions } from './options.js';
import { startReferenceServer } from './server.js';

const stopSignal = new Promise<string>((resolve) => {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => resolve(signal));
});

async function main(): Promise<number> {
  let options: MainOptions;
  try {
    options = parseMainOptions(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`reference-server: ${error.message}\n\n${USAGE}`);
    return 2;
  }
  if (options.help) {
    console.log(USAGE);
    return 0;
  }
  const log = (line: string) => console.log(line);
  let server;
  try {
    server = await startReferenceServer({
      port: options.port,
      host: options.host,
      ...(options.store !== undefined && { store: options.store }),
      ...(options.data !== undefined && { dataDir: options.data }),
      terminals: !options['no-terminals'],
      dashboard: { buildAtStart: true },
      log,
    });
  } catch (error) {
    console.error(`reference-server: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
  log(`Lockstep reference server on ${server.url} (WebSocket ${server.wsUrl}; store: ${server.storeDescription}). Ctrl-C stops it.`);
  const reason = await stopSignal;
  log(`stopping (${reason})`);
  await server.close();
  return 0;
}

process.exitCode = await main();
// Nothing may keep a stopped server alive (a stray timer in a dependency, a half-closed socket).
process.exit();
