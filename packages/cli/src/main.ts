#!/usr/bin/env node
import { createInterface } from 'node:readline/promises';
import { run } from './run.js';

const signals = ['SIGINT', 'SIGTERM'] as const;
const stopSignal = new Promise<string>((resolve) => {
  for (const signal of signals) process.once(signal, () => resolve(signal));
  // A reader that went away (`lockstep watch … | head -3`) ends the command like a signal would.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') resolve('stdout closed');
  });
});

process.exitCode = await run(process.argv.slice(2), {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  stopSignal,
  env: process.env,
  // The connection status line is for a person watching a terminal, never for a pipe or a log.
  ...(process.stderr.isTTY ? { status: (text: string) => process.stderr.write(`\r\x1b[2K${text}`) } : {}),
  // Only a person at a terminal can confirm; elsewhere commands that need it ask for --yes.
  ...(process.stdin.isTTY && process.stdout.isTTY
    ? {
        confirm: async (question: string) => {
          const prompt = createInterface({ input: process.stdin, output: process.stdout });
          try {
            return /^y(es)?$/i.test((await prompt.question(question)).trim());
          } finally {
            prompt.close();
          }
        },
      }
    : {}),
});
// Output to a pipe is written asynchronously: what is still queued (a large `--json` board) goes
// out before the exit, or the reader gets it cut short.
const flushed = (stream: NodeJS.WriteStream) =>
  new Promise<void>((resolve) => {
    if (stream.destroyed || !stream.writable) resolve();
    else stream.write('', () => resolve());
  });
await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
// Nothing may keep a stopped server alive (a stray timer in a dependency, a half-closed socket).
process.exit();
