// PTY → WebSocket viewer throughput against reading the PTY directly with node-pty (issue 6).
import '../packages/pty/bench/ptyThroughput.js';
