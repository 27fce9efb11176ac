import { mkdtempSync, existsSync, readFileSync, readlinkSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LockstepError } from '@lockstep/core';
import { afterEach, describe, expect, it } from 'vitest';
import { isAlive, sessionMembers } from './processTree.js';
import { buildEnvironment } from './spawnPolicy.js';
import { spawnTerminal, type TerminalSettings } from './terminal.js';
import { Spawned, text, waitFor, waitForOutput, waitGone } from './test/helpers.js';

const spawned = new Spawned();
afterEach(() => spawned.closeAll());

function spawn(options: Parameters<typeof spawnTerminal>[0], settings: TerminalSettings = {}) {
  return spawned.add(spawnTerminal(options, settings));
}

function invalidParams(run: () => unknown): LockstepError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(LockstepError);
    expect((error as LockstepError).code).toBe('INVALID_PARAMS');
    return error as LockstepError;
  }
  throw new Error('expected INVALID_PARAMS');
}

describe('Terminal: spawning', () => {
  it('passes arguments to the program verbatim: shell metacharacters are never interpreted', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lockstep-pty-'));
    try {
      const nasty = `'; rm -rf ${dir}; echo $(id) \`id\` > ${dir}/pwned && true | cat; *`;
      const echo = spawn({ file: '/bin/echo', args: [nasty, '$HOME', '"quoted"'] });
      expect(await echo.exited).toEqual({ exitCode: 0 });
      expect(text(echo)).toBe(`${nasty} $HOME "quoted"\r\n`);
      expect(existsSync(dir)).toBe(true);
      expect(existsSync(join(dir, 'pwned'))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('execs the executable itself with exactly its argv — no shell in between', async () => {
    const nasty = '; echo $(id)';
    const cat = spawn({ file: 'cat', args: ['-', nasty] }); // bare name: found on the terminal's PATH
    const exe = () => realpathSync(readlinkSync(`/proc/${cat.pid}/exe`));
    // Until the forked child has exec'd, its image is still node's.
    await waitFor(() => exe() === realpathSync(cat.file), 'the exec');
    expect(readFileSync(`/proc/${cat.pid}/cmdline`, 'utf8').split('\0').slice(0, -1)).toEqual([cat.file, '-', nasty]);
    cat.write('\x04'); // EOF on stdin: cat goes on to the "file" named by the argument, which does not exist
    expect((await cat.exited).exitCode).toBe(1);
    expect(text(cat)).toContain(`cat: '${nasty}': No such file or directory`); // cat quotes the name it got
  });

  it('gives the program only the allow-listed environment, plus what the policy and the spawn add', async () => {
    const sourceEnv = { PATH: process.env['PATH'], HOME: '/home/hub', LOCKSTEP_PTY_SECRET: 'hunter2', AWS_SECRET_ACCESS_KEY: 'abc' };
    process.env['LOCKSTEP_PTY_SECRET'] = 'hunter2';
    try {
      const fromProcess = spawn({ file: '/usr/bin/env', cwd: '/' });
      await fromProcess.exited;
      expect(text(fromProcess)).not.toContain('hunter2');
      expect(text(fromProcess)).toContain('TERM=xterm-256color');
      const env = spawn({ file: '/usr/bin/env', env: { EXTRA: 'yes' }, cwd: '/' }, { policy: { sourceEnv, env: { TERM: 'dumb', TEAM: 'infra' } } });
      await env.exited;
      const lines = text(env).split('\r\n').filter(Boolean).sort();
      // node-pty adds PWD (the cwd) and TERM (from ours); nothing else of the hub's gets through.
      expect(lines).toEqual([`EXTRA=yes`, `HOME=/home/hub`, `PATH=${process.env['PATH']}`, 'PWD=/', 'TEAM=infra', 'TERM=dumb'].sort());
    } finally {
      delete process.env['LOCKSTEP_PTY_SECRET'];
    }
    expect(buildEnvironment({ inheritEnv: ['HOME'], sourceEnv: { HOME: '/h', PATH: '/p' } })).toEqual({ HOME: '/h', TERM: 'xterm-256color' });
  });

  it('refuses what the policy does not allow, before any process exists', () => {
    expect(invalidParams(() => spawnTerminal({ file: '/no/such/program' })).data).toEqual({ file: '/no/such/program' });
    invalidParams(() => spawnTerminal({ file: 'definitely-not-on-path-xyz' }));
    invalidParams(() => spawnTerminal({ file: '/etc/passwd' })); // not executable
    invalidParams(() => spawnTerminal({ file: '/bin/echo', cwd: '/no/such/dir' }));
    invalidParams(() => spawnTerminal({ file: '/bin/echo', cols: 0 }));
    invalidParams(() => spawnTerminal({ file: '/bin/echo', rows: 1001 }));
    invalidParams(() => spawnTerminal({ file: '/bin/echo', cols: 80.5 }));
    invalidParams(() => spawnTerminal({ file: '/bin/echo', id: '../etc' }));
    invalidParams(() => spawnTerminal({ file: '/bin/echo', env: { 'BAD=NAME': 'x' } }));
    invalidParams(() => spawnTerminal({ file: '/bin/echo', args: ['a\0b'] }));
    invalidParams(() => spawnTerminal({ file: '/bin/echo', shell: true } as never));
    expect(invalidParams(() => spawnTerminal({ file: '/bin/cat' }, { policy: { executables: ['/bin/echo'] } })).message).toMatch(/not allowed/);
  });
});

describe('Terminal: running', () => {
  it('reports the exit code, and the signal when one ended the program', async () => {
    const seven = spawn({ file: '/bin/sh', args: ['-c', 'exit 7'] });
    expect(await seven.exited).toEqual({ exitCode: 7 });
    expect(seven.exit).toEqual({ exitCode: 7 });
    const sleeper = spawn({ file: '/bin/sleep', args: ['1000'] });
    sleeper.kill('SIGTERM');
    expect(await sleeper.exited).toEqual({ exitCode: 0, signal: 'SIGTERM' });
  });

  it('delivers a resize to the program (SIGWINCH; stty and tput see the new size)', async () => {
    const terminal = spawn({ file: '/bin/sh', args: ['-c', 'while read line; do stty size; tput cols; done'], cols: 80, rows: 24 });
    terminal.write('a\n');
    await waitForOutput(terminal, '24 80\r\n80\r\n');
    terminal.resize(132, 50);
    expect([terminal.cols, terminal.rows]).toEqual([132, 50]);
    terminal.write('b\n');
    await waitForOutput(terminal, '50 132\r\n132\r\n');
    expect(() => terminal.resize(0, 10)).toThrow(RangeError);
    expect(() => terminal.resize(10, 1001)).toThrow(RangeError);
  });

  it('takes input as text (UTF-8) or bytes', async () => {
    const terminal = spawn({ file: '/bin/sh', args: ['-c', 'read line; printf "<%s>" "$line"'] });
    terminal.write('héllo ');
    terminal.write(new TextEncoder().encode('wörld\n'));
    await terminal.exited;
    expect(text(terminal)).toContain('<héllo wörld>');
    expect(() => terminal.write('late')).toThrow(/has exited/);
  });

  it('coalesces output into released ranges and keeps byte offsets across scrollback truncation', async () => {
    const terminal = spawn({ file: '/usr/bin/seq', args: ['1', '20000'] }, { scrollbackBytes: 1024, coalesceMs: 16 });
    const ranges: Array<{ from: number; to: number }> = [];
    terminal.onOutput((range) => ranges.push(range));
    await terminal.exited;
    const total = Array.from({ length: 20000 }, (_, i) => `${i + 1}\r\n`).join('');
    expect(terminal.end).toBe(Buffer.byteLength(total));
    expect(terminal.start).toBe(terminal.end - 1024);
    expect(terminal.read().toString()).toBe(total.slice(-1024));
    // Contiguous ranges covering everything, each released when 64 KiB were pending or 16 ms passed.
    expect(ranges[0]?.from).toBe(0);
    for (let i = 1; i < ranges.length; i++) expect(ranges[i]!.from).toBe(ranges[i - 1]!.to);
    expect(ranges.at(-1)?.to).toBe(terminal.end);
  });

  it("keeps the end of a fast program's output (node-pty alone drops it on Linux about half of the time)", async () => {
    const expected = Buffer.from(Array.from({ length: 20000 }, (_, i) => `${i + 1}\r\n`).join(''));
    const runs = Array.from({ length: 12 }, () => spawn({ file: 'seq', args: ['1', '20000'] }));
    await Promise.all(runs.map((run) => run.exited));
    for (const run of runs) {
      expect(run.end).toBe(expected.length);
      expect(run.read(0).equals(expected)).toBe(true);
    }
  });

  it('close() ends the whole session: background jobs, even in process groups of their own', async () => {
    // `set -m` turns on job control: the background sleep gets a process group of its own.
    const terminal = spawn({ file: '/bin/sh', args: ['-c', 'set -m; sleep 1000 & echo "bg=$!"; sleep 1000 & echo "bg=$!"; wait'] });
    const output = await waitForOutput(terminal, /bg=\d+\r\n.*bg=\d+\r\n/s);
    const pids = [...output.matchAll(/bg=(\d+)/g)].map((match) => Number(match[1]));
    expect(pids.every(isAlive)).toBe(true);
    expect(sessionMembers(terminal.pid)).toEqual(expect.arrayContaining([terminal.pid, ...pids]));
    await terminal.close();
    await waitGone([terminal.pid, ...pids]);
  });

  it('when the program exits, what it left running in its session goes with it', async () => {
    // The background sleep ignores SIGHUP, so the hangup of the exiting shell does not end it.
    const terminal = spawn({ file: '/bin/sh', args: ['-c', 'trap "" HUP; sleep 1000 & echo "bg=$!"'] });
    await terminal.exited;
    const pid = Number(/bg=(\d+)/.exec(text(terminal))?.[1]);
    expect(pid).toBeGreaterThan(0);
    await waitGone([pid]);
  });

  it('SIGKILLs a program that ignores SIGHUP after the grace period', async () => {
    const terminal = spawn({ file: '/bin/sh', args: ['-c', 'trap "" HUP; echo ready; while :; do sleep 1; done'] }, { killGraceMs: 50 });
    await waitForOutput(terminal, 'ready');
    const exit = await terminal.close();
    expect(exit.signal).toBe('SIGKILL');
    await waitFor(() => !terminal.alive);
  });
});
