#!/usr/bin/env node
import { run } from './run.js';

const signals = ['SIGINT', 'SIGTERM'] as const;
const stopSignal = new Promise<string>((resolve) => {
  for (const signal of signals) process.once(signal, () => resolve(signal));
});

process.exitCode = await run(process.argv.slice(2), {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  stopSignal,
});
// Nothing may keep a stopped server alive (a stray timer in a dependency, a half-closed socket).
process.exit();
