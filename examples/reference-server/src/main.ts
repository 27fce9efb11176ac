/**
 * `pnpm start`: the reference server, until Ctrl-C. See docs/reference-server.md.
 */
import { USAGE, UsageError, parseMainOptions, profilesOf, type MainOptions } from './options.js';
import { startReferenceServer } from './server.js';

const stopSignal = new Promise<string>((resolve) => {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => resolve(signal));
});

async function main(): Promise<number> {
  let options: MainOptions;
  let profiles: Awaited<ReturnType<typeof profilesOf>>;
  try {
    options = parseMainOptions(process.argv.slice(2));
    profiles = options.help ? {} : await profilesOf(options);
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
      ...profiles,
      auth: options['insecure-no-auth'] ? { insecureNoAuth: true } : { ...(options['token-file'] !== undefined && { tokenFile: options['token-file'] }) },
      allowedHosts: options['allowed-host'],
      allowedOrigins: options['allowed-origin'],
      dashboard: { buildAtStart: true },
      log,
    });
  } catch (error) {
    console.error(`reference-server: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
  if (server.loginUrl !== undefined) {
    // The token is printed once, here, for the person who started the server: never in other logs.
    log(`Open the dashboard: ${server.loginUrl}`);
    const where = server.tokenSource?.source === 'environment' ? '$LOCKSTEP_TOKEN' : server.tokenSource?.file;
    log(`Clients present the token (from ${where}) as Authorization: Bearer; the lockstep CLI on this machine finds it by itself.`);
  } else {
    log('WARNING: --insecure-no-auth: no token is needed. Anyone who can reach this port can read every stream and run commands in its shells.');
  }
  if (server.profiles !== undefined && server.profiles.names.length > 1) {
    log(`Session profiles: ${server.profiles.names.map((name) => (name === server.profiles!.defaultName ? `${name} (default)` : name)).join(', ')}`);
  }
  // Last: the line that says it is ready.
  log(`Lockstep reference server on ${server.url} (WebSocket ${server.wsUrl}; store: ${server.storeDescription}). Ctrl-C stops it.`);
  const reason = await stopSignal;
  log(`stopping (${reason})`);
  await server.close();
  return 0;
}

process.exitCode = await main();
// Nothing may keep a stopped server alive (a stray timer in a dependency, a half-closed socket).
process.exit();
