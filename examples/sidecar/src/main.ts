/**
 * `pnpm sidecar` — seed 004 runnable: the manager (this process) runs the orchestrator
 * (src/orchestrator.ts) and the two call each other through typed services (src/services.ts):
 *
 * - the manager calls `orchestrate.route`; inside that handler the orchestrator calls the manager
 *   back (`manager.createPane`) on the same connection, then records the task, the pane and the
 *   focus in the streams the manager has subscribed to;
 * - notifications go both ways (`orchestrate.progress`, `manager.paneClosed`);
 * - both sides require each other's application and service versions at `hello`;
 * - the orchestrator is SIGKILLed mid-call: the manager's calls fail at once with UNAVAILABLE, it
 *   queues its commands and keeps its local view; the restarted orchestrator finds its file store
 *   and what it routed, and the manager drains its queue.
 *
 *   pnpm sidecar            sidecar mode: the orchestrator on stdio pipes (createSidecar)
 *   pnpm sidecar -- --ws    service mode: the orchestrator on a loopback WebSocket with a token
 *                           (or LOCKSTEP_SIDECAR_MODE=service)
 *
 * Every check is printed; the exit code is 0 only when all of them passed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createClient } from '@lockstep/client';
import { defineService, method, satisfies, type Transport } from '@lockstep/core';
import { SidecarUnavailableError, createSidecar } from '@lockstep/stdio';
import { webSocketConnector, webSocketTransport } from '@lockstep/ws';
import { filter, firstValueFrom } from 'rxjs';
import * as z from 'zod';
import { startOrchestrator, startSidecar, type Mode, type Orchestrator } from './launch.js';
import { createManagerClient, describeView, type ManagerClient } from './managerClient.js';
import { Checks, describeError, isError, ms, say, short } from './report.js';
import { APP_NAME, MANAGER_APP, ORCHESTRATOR_APP, manager, orchestrate } from './services.js';

const mode: Mode = process.argv.includes('--ws') || process.env['LOCKSTEP_SIDECAR_MODE'] === 'service' ? 'service' : 'sidecar';
const WATCHDOG_MS = 90_000;
const checks = new Checks();
const dataDir = mkdtempSync(join(tmpdir(), 'lockstep-seed004-'));
let orchestrator: Orchestrator | undefined;
let host: ManagerClient | undefined;

// A run that hangs (an orchestrator that never starts) fails instead, and still cleans up.
const watchdog = setTimeout(() => {
  console.log(`  ✗ FAILED: the run did not finish within ${WATCHDOG_MS / 1000} s`);
  rmSync(dataDir, { recursive: true, force: true });
  process.exit(1); // the sidecar's exit hook and the service's closed stdin end the orchestrator
}, WATCHDOG_MS);

console.log(
  `Lockstep seed 004: the manager and its orchestrator, in ${mode === 'sidecar' ? 'sidecar mode (stdio pipes)' : 'service mode (WebSocket with a token)'}\n` +
    `  the orchestrator's file store: ${dataDir}\n`,
);
try {
  await run();
} catch (error) {
  checks.check(false, `the run ended early: ${describeError(error)}`);
  console.error(error);
} finally {
  host?.client.close();
  await orchestrator?.close();
  rmSync(dataDir, { recursive: true, force: true });
}
clearTimeout(watchdog);
console.log(`\n${checks.summary()}`);
process.exitCode = checks.passed ? 0 : 1;

async function run(): Promise<void> {
  orchestrator = await startOrchestrator(mode, dataDir);
  if (orchestrator.url !== undefined) await checkTokenRequired(orchestrator.url);
  host = createManagerClient(orchestrator.connect);
  const { client, tasks, focus, panes, progress } = host;
  // Online — unless the orchestrator cannot be started at all (the sidecar gave up on it).
  await Promise.race([
    client.whenIdle(),
    firstValueFrom(client.status$.pipe(filter((status) => status.lastError instanceof SidecarUnavailableError))).then((status) =>
      Promise.reject(status.lastError as SidecarUnavailableError),
    ),
  ]);

  // --- Capabilities and versions, negotiated at hello ------------------------------------------
  const hello = client.serverInfo!;
  const services = (hello.services ?? []).map(({ name, version }) => `${name} ${version}`).join(', ');
  say(
    'manager',
    `hello answered: protocol ${hello.protocol}, app ${hello.app?.name} ${hello.app?.version}, services [${services}], domains [${hello.domains.join(', ')}]`,
  );
  say('manager', `  capabilities ${JSON.stringify(hello.capabilities)}, epoch ${short(hello.epoch)}`);
  say('manager', `we announced: services [${manager.name} ${manager.version}], app ${MANAGER_APP.name} ${MANAGER_APP.version}`);
  const epoch = hello.epoch;
  checks.check(
    client.supports(orchestrate) &&
      hello.app?.name === APP_NAME &&
      satisfies(hello.app.version, MANAGER_APP.accepts) &&
      satisfies(MANAGER_APP.version, ORCHESTRATOR_APP.accepts),
    `versions negotiated at hello: orchestrate ${hello.services?.find((s) => s.name === orchestrate.name)?.version} serves our ${orchestrate.version}; ` +
      `orchflow ${hello.app?.version} satisfies our "${MANAGER_APP.accepts}", and our ${MANAGER_APP.version} its "${ORCHESTRATOR_APP.accepts}"`,
  );

  // --- Calls both ways ---------------------------------------------------------------------------
  const route = async (command: string) => {
    say('manager', `→ orchestrate.route "${command}"`);
    const started = performance.now();
    const result = await client.call(orchestrate.route, { command });
    say('manager', `  ${result.taskId} → ${result.agent} in ${result.paneType} ${result.paneId} (${ms(performance.now() - started)})`);
    return result;
  };
  const tests = await route('run tests');
  const readme = await route('edit README.md');
  checks.check(
    panes.get(tests.paneId)?.command === 'npm test' && panes.get(readme.paneId)?.type === 'editor' && tests.agent === 'tester',
    'orchestrate.route called manager.createPane back on the same connection and answered with the pane it opened',
  );
  await host.until((state, focused) => state.tasks[readme.taskId]?.sessionIds.includes(readme.paneId) === true && focused.focused.includes(readme.paneId));
  checks.check(
    tasks.getSnapshot().tasks[tests.taskId]?.sessionIds[0] === tests.paneId && focus.getSnapshot().focused.includes(readme.paneId),
    `shared state: the orchestrator recorded both routings in streams the manager sees · ${describeView(host)}`,
  );

  say('manager', `${tests.paneId} finished with exit code 0 → manager.paneClosed`);
  client.notify(manager.paneClosed, { paneId: tests.paneId, exitCode: 0 });
  await host.until((state, focused) => state.tasks[tests.taskId]?.status === 'completed' && !focused.focused.includes(tests.paneId));
  checks.check(true, `notification manager → orchestrator: it completed ${tests.taskId} and unfocused ${tests.paneId} in the shared streams`);
  const before = await client.call(orchestrate.status);
  say('manager', `orchestrate.status: ${JSON.stringify(before)}`);

  // --- SIGKILL: calls fail fast, the manager keeps working --------------------------------------
  const queue: string[] = [];
  const thinking = firstValueFrom(progress.pipe(filter((p) => p.stage === 'thinking')));
  say('manager', '→ orchestrate.route "plan the release" (the planner thinks before it asks for a pane)');
  const planning = client.call(orchestrate.route, { command: 'plan the release' }, { timeoutMs: 20_000 }).then(
    () => undefined,
    (error: unknown) => error,
  );
  await thinking;
  const killed = await orchestrator.pid();
  say('manager', `kills the orchestrator (pid ${killed}) with SIGKILL while it thinks`);
  const killedAt = performance.now();
  process.kill(killed, 'SIGKILL');
  const lost = await planning;
  const lostMs = performance.now() - killedAt;
  checks.check(
    isError(lost, 'UNAVAILABLE', 'connectionLost'),
    `the call in flight failed fast: ${describeError(lost)} ${ms(lostMs)} after the SIGKILL (its timeout was 20 s)`,
  );
  queue.push('plan the release');

  for (const [name, call] of [
    ['orchestrate.route "deploy staging"', () => client.call(orchestrate.route, { command: 'deploy staging' })],
    ['orchestrate.status (idempotent)', () => client.call(orchestrate.status)],
  ] as const) {
    const started = performance.now();
    const error = await call().then(
      () => undefined,
      (failure: unknown) => failure,
    );
    checks.check(
      isError(error, 'UNAVAILABLE', 'notConnected'),
      `${name} while it is down: ${describeError(error)} in ${ms(performance.now() - started)}, nothing sent`,
    );
  }
  queue.push('deploy staging');
  say('manager', `queues [${queue.map((command) => `"${command}"`).join(', ')}] for when the orchestrator is back`);
  say('manager', 'keeps working: creates the task "Triage the crash" in its local view (pending until a hub confirms it)');
  const triage = tasks.dispatch({ type: 'task.create', payload: { id: 'triage', title: 'Triage the crash', priority: 'high' } });
  checks.check(
    tasks.pendingCommands.length === 1 && tasks.getSnapshot().tasks['triage'] !== undefined && tasks.getSnapshot().tasks[tests.taskId]?.status === 'completed',
    `the manager's local view stays usable meanwhile · ${describeView(host)}`,
  );

  // --- The restarted orchestrator recovers its state ----------------------------------------------
  await triage;
  await client.whenIdle();
  const restarted = await orchestrator.pid();
  const after = await client.call(orchestrate.status);
  say('manager', `orchestrate.status: ${JSON.stringify(after)}`);
  checks.check(
    restarted !== killed && client.serverInfo?.epoch === epoch && after.routed === before.routed && after.store === before.store,
    `the restarted orchestrator (pid ${restarted}) found its file store: same epoch ${short(epoch)}, ${after.routed} routed commands back, and the manager's streams resumed without a reset`,
  );

  say('manager', `drains its queue, both calls at once: ${queue.map((command) => `"${command}"`).join(', ')}`);
  const drained = await Promise.all(queue.map(route));
  await host.until((state) => drained.every((result) => state.tasks[result.taskId]?.sessionIds.includes(result.paneId)));
  checks.check(
    drained.every((result) => result.paneId !== undefined) && new Set([tests, readme, ...drained].map((r) => r.taskId)).size === 4,
    `the queued commands were routed after the restart, with new task ids (${drained.map((result) => result.taskId).join(', ')})`,
  );

  // --- What an incompatible peer gets ---------------------------------------------------------------
  const orchestrateV2 = defineService('orchestrate', '2.0.0', {
    route: method({ params: z.object({ command: z.string() }), result: z.object({ agent: z.string() }) }),
  });
  const refused = await client.call(orchestrateV2.route, { command: 'x' }).then(
    () => undefined,
    (error: unknown) => error,
  );
  checks.check(
    isError(refused, 'METHOD_NOT_FOUND', 'incompatibleVersion'),
    `a caller built for orchestrate 2.0 is refused before anything is sent: ${describeError(refused)}`,
  );
  await checkOldManagerRefused();
  if (mode === 'sidecar') await checkMissingSidecar();

  // --- Converged -----------------------------------------------------------------------------------------
  await client.whenIdle();
  const state = tasks.confirmed.state;
  console.log(`\n  ${describeView(host)}\n`);
  checks.check(
    tasks.pendingCommands.length === 0 &&
      focus.pendingCommands.length === 0 &&
      JSON.stringify(tasks.getSnapshot()) === JSON.stringify(state) &&
      Object.keys(state.tasks).length === 5 &&
      state.tasks['triage']?.status === 'pending' &&
      client.serverInfo?.epoch === epoch &&
      panes.size === 4,
    'converged: the manager and the orchestrator hold the same streams, nothing pending, one epoch throughout',
  );
}

/** Service mode: the orchestrator is a network entry; without the token the upgrade is refused. */
async function checkTokenRequired(url: string): Promise<void> {
  const transport = webSocketTransport(url);
  const state = await firstValueFrom(transport.state.pipe(filter((s) => s.status !== 'connecting')));
  const reason = state.status === 'closed' ? state.reason : 'it opened';
  checks.check(state.status === 'closed' && /401/.test(reason), `${url} without the token is refused at the upgrade: ${reason}`);
  transport.close('done');
}

/** A manager of orchflow 1.9 is refused by the orchestrator's hello (it takes ^2.0.0). */
async function checkOldManagerRefused(): Promise<void> {
  let connect: () => Transport | Promise<Transport>;
  let old: Orchestrator | undefined;
  if (orchestrator?.url !== undefined) {
    connect = webSocketConnector(orchestrator.url, { token: orchestrator.token! });
  } else {
    // A sidecar child serves one connection: the old manager gets its own (on a memory store).
    old = startSidecar(['--memory'], 'old sidecar');
    connect = old.connect;
  }
  const oldManager = createClient({ connect, clientId: 'old-manager', app: { name: APP_NAME, version: '1.9.0' }, backoff: { initialMs: 60_000 } });
  try {
    const offline = await firstValueFrom(oldManager.status$.pipe(filter((status) => status.lastError !== undefined)));
    checks.check(
      isError(offline.lastError, 'INCOMPATIBLE_APP'),
      `a manager of orchflow 1.9.0 is refused at hello: ${describeError(offline.lastError)} — ${offline.lastError?.message}`,
    );
  } finally {
    oldManager.close();
    await old?.close();
  }
}

/** Sidecar mode: a host whose orchestrator is not installed learns it at once, and carries on without it. */
async function checkMissingSidecar(): Promise<void> {
  const missing = createSidecar({ command: 'orchflow-orchestrator-not-installed' });
  try {
    await missing.negotiate();
    checks.check(false, 'a missing orchestrator was reported');
  } catch (error) {
    const found = error instanceof SidecarUnavailableError && error.reason === 'not-found';
    checks.check(
      found,
      `a missing orchestrator is reported at once (${found ? `${error.reason}: ${error.message}` : describeError(error)}): the manager carries on alone`,
    );
  } finally {
    await missing.close();
  }
}
