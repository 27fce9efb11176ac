import { closeSync, constants, openSync, readSync } from 'node:fs';
import type { IPty } from 'node-pty';

/**
 * Keeps node-pty from losing the end of a program's output on Linux.
 *
 * When the last holder of a pty's slave side closes it (the program exits), Linux answers reads of
 * the master side with EIO — and node-pty (1.1.0, and pty.js before it) takes that as the end,
 * dropping whatever output was still buffered: a `seq 1 20000` lost its last few KiB in about half
 * of the runs here (microsoft/node-pty issues #85 and #726). Two measures close that gap:
 *
 * 1. The hub holds a descriptor of the slave side itself (opened right after the fork, `O_NOCTTY`
 *    so it never becomes the hub's controlling terminal). The slave is then never fully closed while
 *    the program's output is read, so no EIO can cut the read short. node-pty, which waits for the
 *    master side to close after the program has exited, gives up waiting after 200 ms and closes it
 *    itself: exits are reported about 200 ms after the program ends.
 * 2. Before node-pty closes the master side, whatever is still buffered on it is read synchronously
 *    and handed over as output. Without this, an event loop blocked for longer than those 200 ms
 *    would run node-pty's timer before the pending reads.
 *
 * Both use node-pty internals (`ptsName`, `_fd`, `_socket`), checked before use: with another
 * node-pty they are skipped, and the terminal works as node-pty alone does.
 */
export function guardOutput(pty: IPty, onData: (data: Buffer) => void): () => void {
  const internals = pty as unknown as { ptsName?: unknown; _fd?: unknown; _socket?: { destroy?: unknown } };
  let slave: number | undefined;
  if (typeof internals.ptsName === 'string') {
    try {
      slave = openSync(internals.ptsName, constants.O_RDWR | constants.O_NOCTTY | constants.O_NONBLOCK);
    } catch {
      // The program is already gone (and took the pts with it): nothing to hold.
    }
  }
  const master = internals._fd;
  const socket = internals._socket;
  if (typeof master === 'number' && socket && typeof socket.destroy === 'function') {
    const destroy = socket.destroy as (...args: unknown[]) => unknown;
    socket.destroy = function (this: unknown, ...args: unknown[]) {
      drain(master, onData);
      return destroy.apply(this, args);
    };
  }
  return () => {
    if (slave === undefined) return;
    try {
      closeSync(slave);
    } catch {
      // already closed
    }
    slave = undefined;
  };
}

/** Reads what the (non-blocking) master side still holds, until it would block or is closed. */
function drain(fd: number, onData: (data: Buffer) => void): void {
  const buffer = Buffer.allocUnsafe(64 * 1024);
  for (;;) {
    let read: number;
    try {
      read = readSync(fd, buffer, 0, buffer.length, null);
    } catch {
      return; // EAGAIN: nothing more; EIO or EBADF: closed
    }
    if (read <= 0) return;
    onData(Buffer.from(buffer.subarray(0, read)));
  }
}
