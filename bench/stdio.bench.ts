// The stdio round trip: command → ack over pipes to a child hub vs a raw vscode-jsonrpc echo (issue 4).
import '../packages/stdio/bench/stdioRoundTrip.js';
