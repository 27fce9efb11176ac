/** The exit codes of `lockstep` (docs/cli.md lists them): scripts branch on these. */
export const ExitCodes = {
  /** Done: the command was applied (or was already), the read or the watch ended normally. */
  ok: 0,
  /** Refused or failed at runtime: the hub refused (the code is printed), or no answer in time. */
  failed: 1,
  /** Bad command line: the message names the argument; nothing was sent. */
  usage: 2,
  /** Could not connect to the hub within `--timeout` (or the address serves no Lockstep hub). */
  unreachable: 3,
  /** Interrupted (SIGINT or SIGTERM) before a one-shot command finished: it may or may not apply. */
  interrupted: 130,
} as const;

export type ExitCode = (typeof ExitCodes)[keyof typeof ExitCodes];
