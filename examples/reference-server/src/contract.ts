/**
 * What the pieces of the reference server agree on: the server process (HTTP, WebSocket, REST, SSE,
 * terminals), the dashboard it serves, and the `lockstep` CLI's defaults. Import these rather than
 * repeating the literals.
 */

/** `PORT` overrides it. */
export const DEFAULT_PORT = 7420;
export const DEFAULT_HOST = '127.0.0.1';

/** The WebSocket endpoint, on the same port as HTTP. */
export const WS_PATH = '/lockstep';

/** The one project the reference server shows: its tasks stream is `tasks/<PROJECT_ID>`, its focus
 * stream `focus/<PROJECT_ID>`, and its sessions' terminals belong to it. */
export const PROJECT_ID = 'default';

/** The orchestration stream's key: `orchestration/<ORCHESTRATION_KEY>`. */
export const ORCHESTRATION_KEY = 'default';

/** Where the file store lives unless `--data DIR` or `--store postgres://…` says otherwise. */
export const DEFAULT_DATA_DIR = '.data/reference-server';

/**
 * The dashboard page: the server serves `/` as an HTML page with `<div id="root">` and loads
 * `/assets/dashboard.js` (esbuild bundle of `src/dashboard/main.tsx`, which mounts into that element)
 * and `/assets/dashboard.css` (`@xterm/xterm/css/xterm.css`, then `src/dashboard/styles.css` when it
 * exists — so main.tsx need not import any CSS).
 */
export const DASHBOARD_ROOT_ID = 'root';
export const DASHBOARD_SCRIPT_PATH = '/assets/dashboard.js';
export const DASHBOARD_STYLE_PATH = '/assets/dashboard.css';

/** Prefix of the REST + Server-Sent Events API (docs/reference-server.md). */
export const API_PREFIX = '/api';

/** Liveness, without a token: `{"status":"ok"}` (503 `{"status":"closing"}` while shutting down), nothing more. */
export const HEALTH_PATH = '/health';

/**
 * The signals a session's stop may send first (`POST /api/sessions/:id/stop`, `daemon.stopSession`);
 * SIGKILL follows after a grace period if the program is still there. Default SIGHUP.
 */
export const STOP_SIGNALS = ['SIGHUP', 'SIGINT', 'SIGTERM', 'SIGKILL'] as const;
export type StopSignal = (typeof STOP_SIGNALS)[number];
