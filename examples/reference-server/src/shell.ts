import { accessSync, constants } from 'node:fs';
import { isAbsolute } from 'node:path';
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
