import { readdirSync, readFileSync } from 'node:fs';

/**
 * A terminal's program runs as the leader of a new session and process group (node-pty calls
 * `setsid`), so its pid is also its process group id and its session id. Everything it starts
 * stays in that session unless it calls `setsid` itself (a daemon), and in that process group
 * unless a shell with job control moves a job into a group of its own.
 */

/**
 * Sends `signal` to the terminal's whole process group. Right after the fork the child may not have
 * made its group yet (`setsid` runs before the exec): then the signal goes to the child itself, whose
 * signals node-pty keeps blocked until it has reset their handlers, so it takes the default action.
 * False when neither exists any more.
 */
export function signalGroup(pid: number, signal: NodeJS.Signals): boolean {
  for (const target of [-pid, pid]) {
    try {
      process.kill(target, signal);
      return true;
    } catch {
      // no such group (yet, or any more): try the process
    }
  }
  return false;
}

/**
 * Pids of the live processes of session `sid` (Linux: read from `/proc`; elsewhere empty). Catches
 * the jobs an interactive shell moved into process groups of their own.
 */
export function sessionMembers(sid: number): number[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  const members: number[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat && stat.session === sid && stat.state !== 'Z') members.push(Number(entry));
  }
  return members;
}

/** SIGKILLs the process group and every other live member of the session. */
export function killSession(pid: number): void {
  signalGroup(pid, 'SIGKILL');
  for (const member of sessionMembers(pid)) {
    try {
      process.kill(member, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** True while the process exists and is not a zombie (Linux); elsewhere, while it can be signalled. */
export function isAlive(pid: number): boolean {
  const stat = readStat(pid);
  if (stat) return stat.state !== 'Z' && stat.state !== 'X';
  try {
    process.kill(pid, 0);
    return process.platform !== 'linux';
  } catch {
    return false;
  }
}

function readStat(pid: number): { state: string; session: number } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // `pid (comm) state ppid pgrp session …`; comm may itself contain spaces and parentheses.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const session = Number(fields[3]);
  return { state: fields[0] ?? '', session };
}
