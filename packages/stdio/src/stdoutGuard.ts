let guarded = false;
/** `process.stdout.write` as it was before the guard: what a frame writer on stdout must use. */
let realStdoutWrite: ((chunk: Uint8Array) => boolean) | undefined;

/**
 * Sends everything written to `process.stdout` through its `write` method — `console.log`,
 * `console.info`, `console.debug`, direct `process.stdout.write` calls — to stderr instead, so a
 * stray log cannot corrupt a frame stream on stdout. Writers that captured the real `write` before
 * (a stdio transport created on `process.stdout`) keep writing to stdout. Raw descriptor writes
 * (`fs.writeSync(1, …)`) cannot be guarded.
 *
 * Idempotent; stays in place for the life of the process. `serveStdio` calls it; a process that may
 * log before it serves (while loading a store) can call it first thing.
 */
export function guardStdout(): void {
  if (guarded) return;
  guarded = true;
  const stderr = process.stderr;
  const toStderr = (...args: unknown[]): boolean => (stderr.write as (...a: unknown[]) => boolean)(...args);
  const stdoutWrite: (chunk: Uint8Array) => boolean = process.stdout.write.bind(process.stdout);
  realStdoutWrite = stdoutWrite;
  process.stdout.write = toStderr;
}

/**
 * How to write frames to `output`: its own `write` — for `process.stdout` behind the guard, the
 * real one the guard replaced (a transport made after `guardStdout()` still writes to stdout).
 */
export function frameWriter(output: { write(chunk: Uint8Array): boolean }): (chunk: Uint8Array) => boolean {
  if (output === process.stdout && realStdoutWrite) return realStdoutWrite;
  return output.write.bind(output);
}

/** Whether {@link guardStdout} is in place in this process. */
export function isStdoutGuarded(): boolean {
  return guarded;
}
