import { accessSync, constants } from 'node:fs';
import { isAbsolute } from 'node:path';
import { LockstepError } from '@lockstep/core';
import type { ShellCommand } from './sessionTerminals.js';

/** The user's login shell (`$SHELL`) when it is an executable absolute path, else /bin/bash, else /bin/sh. */
export function defaultShell(env: Readonly<Record<string, string | undefined>> = process.env): ShellCommand {
  for (const file of [env['SHELL'], '/bin/bash', '/bin/sh']) {
    if (file !== undefined && isAbsolute(file) && isExecutable(file)) return { file, args: [] };
  }
  throw new Error('no shell found for the terminals ($SHELL, /bin/bash, /bin/sh): pass `shell`, or `terminals: false`');
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * When a session is deleted its terminal is killed, and the terminal extension's attempt to record
 * the exit in that session is refused (`session.notFound`): expected, not worth a log line.
 */
export function isGoneSessionExit(error: unknown, context: string): boolean {
  return (
    context.startsWith('recording the exit of terminal') &&
    error instanceof LockstepError &&
    error.code === 'COMMAND_REJECTED' &&
    (error.data as { reason?: unknown } | undefined)?.reason === 'session.notFound'
  );
}
