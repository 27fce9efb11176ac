/**
 * Before and after, on a machine where one benchmark run cannot show a 10% change (the throughput
 * scenario's own runs swing by ±30% here): the engine of another git revision and this tree's, both
 * loaded into one process, measured alternately (the order flips every round) on the throughput
 * scenario's Lockstep subject — one writer pipelining `task.update` to one subscriber, JSON over
 * ws. Reports events per CPU second of each and the median and mean of the same-round ratios
 * (this tree / the other), which hold where the separate runs do not.
 *
 *   pnpm bench:compare [ref] [rounds]      ref: a git revision (default HEAD), rounds: default 12
 *
 * The other revision is checked out once into a git worktree under the OS temp directory
 * (`lockstep-compare-<commit>`) and its dependencies installed offline from the pnpm store. The
 * process pins itself to core 0 (as bench/run.ts does) when `taskset` is there.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import * as z from 'zod';
import { median } from './stats.js';

const here = resolve(fileURLToPath(new URL('.', import.meta.url)), '..');
const MESSAGES = 30_000;

const argsSchema = z.tuple([
  z
    .string()
    .regex(/^[\w./~^@{}-]{1,200}$/, 'a git revision')
    .default('HEAD'),
  z.coerce.number().int().min(1).max(200).default(12),
]);

const parsedArgs = argsSchema.safeParse(process.argv.slice(2).filter((arg) => arg !== '--'));
if (!parsedArgs.success) {
  console.error(`bench:compare: INVALID_ARGUMENTS: ${z.prettifyError(parsedArgs.error)}\nusage: pnpm bench:compare [ref] [rounds]`);
  process.exit(2);
}
const [ref, rounds] = parsedArgs.data;

// Pinned like bench/run.ts: re-run this file under taskset once.
if (!process.env['LOCKSTEP_COMPARE_PINNED'] && spawnSync('taskset', ['--version']).status === 0) {
  const child = spawnSync('taskset', ['-c', '0', process.execPath, ...process.execArgv, fileURLToPath(import.meta.url), ref, String(rounds)], {
    stdio: 'inherit',
    env: { ...process.env, LOCKSTEP_COMPARE_PINNED: '1' },
  });
  process.exit(child.status ?? 1);
}

/** The other revision's tree, checked out and installed once. */
function otherTree(revision: string): string {
  const commit = execFileSync('git', ['rev-parse', '--verify', `${revision}^{commit}`], { cwd: here, encoding: 'utf8' }).trim();
  const dir = join(tmpdir(), `lockstep-compare-${commit.slice(0, 12)}`);
  if (!existsSync(join(dir, 'node_modules'))) {
    if (!existsSync(dir)) execFileSync('git', ['worktree', 'add', '--detach', dir, commit], { cwd: here, stdio: 'inherit' });
    const offline = spawnSync('pnpm', ['install', '--frozen-lockfile', '--offline', '--ignore-scripts'], { cwd: dir, stdio: 'inherit' });
    if (offline.status !== 0) execFileSync('pnpm', ['install', '--frozen-lockfile', '--ignore-scripts'], { cwd: dir, stdio: 'inherit' });
  }
  console.error(`bench:compare: ${revision} = ${commit.slice(0, 12)} in ${dir}`);
  return dir;
}

/** One tree's engine: its own core, client, server and ws packages, from source. */
async function engine(root: string) {
  const load = (path: string) => import(join(root, 'packages', path));
  const [core, client, server, ws, wsServer] = await Promise.all([
    load('core/src/index.ts'),
    load('client/src/index.ts'),
    load('server/src/index.ts'),
    load('ws/src/index.ts'),
    load('ws/src/server/index.ts'),
  ]);
  return { core, client, server, ws, wsServer };
}

type Engine = Awaited<ReturnType<typeof engine>>;

/** The throughput scenario's Lockstep subject (json): events per CPU second at the receiver. */
async function measure(e: Engine, tag: string): Promise<number> {
  const hub = new e.server.Hub({ domains: [e.core.tasksDomain], rateLimit: false });
  const wss = e.wsServer.createWebSocketServer(hub, {
    port: 0,
    heartbeatMs: 0,
    maxPayload: 64 * 1024 * 1024,
    maxConnectionsPerAddress: Number.POSITIVE_INFINITY,
  });
  await wss.ready;
  const connect = e.ws.webSocketConnector(`ws://127.0.0.1:${wss.address().port}`, { codec: e.core.jsonCodec });
  const writer = e.client.createClient({ connect, codec: e.core.jsonCodec });
  const reader = e.client.createClient({ connect, codec: e.core.jsonCodec });
  try {
    const key = `compare-${tag}`;
    const out = writer.stream(e.core.tasksDomain, key);
    const into = reader.stream(e.core.tasksDomain, key);
    await out.dispatch({ type: 'task.create', payload: { id: 'task_bench', title: 'Benchmark' } });
    await into.waitFor(1);
    const cpu = process.cpuUsage();
    const acks: Array<Promise<unknown>> = [];
    for (let i = 0; i < MESSAGES; i++) acks.push(out.dispatch({ type: 'task.update', payload: { id: 'task_bench', title: `Benchmark title ${tag}.${i}` } }));
    await into.waitFor(1 + MESSAGES);
    await Promise.all(acks);
    const used = process.cpuUsage(cpu);
    return MESSAGES / ((used.user + used.system) / 1e6);
  } finally {
    writer.close();
    reader.close();
    await hub.close();
    await wss.close();
  }
}

const trees = { other: await engine(otherTree(ref)), self: await engine(here) };
const ratios: number[] = [];
const rates = { other: [] as number[], self: [] as number[] };
const started = performance.now();
// Round -1 warms both up, unmeasured.
for (let round = -1; round < rounds; round++) {
  const order = round % 2 === 0 ? (['other', 'self'] as const) : (['self', 'other'] as const);
  const got: Record<string, number> = {};
  for (const name of order) got[name] = await measure(trees[name], `${name}-${round}`);
  if (round < 0) continue;
  rates.other.push(got['other']!);
  rates.self.push(got['self']!);
  ratios.push(got['self']! / got['other']!);
  console.error(
    `  round ${round + 1}/${rounds}: ${ref} ${Math.round(got['other']!)}, this tree ${Math.round(got['self']!)} events/CPU s, ratio ${ratios.at(-1)!.toFixed(3)}`,
  );
}
const mean = ratios.reduce((sum, ratio) => sum + ratio, 0) / ratios.length;
console.log(
  `this tree / ${ref}, events per CPU second: median of ${rounds} same-round ratios ${median(ratios).toFixed(3)}, mean ${mean.toFixed(3)}, ` +
    `range ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)} (medians: ${Math.round(median(rates.other))} → ${Math.round(median(rates.self))}; ${Math.round((performance.now() - started) / 1000)} s)`,
);
process.exit(0);
