let guarded = false;

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
  process.stdout.write = toStderr as typeof process.stdout.write;
}

/** Whether {@link guardStdout} is in place in this process. */
export function isStdoutGuarded(): boolean {
  return guarded;
}
