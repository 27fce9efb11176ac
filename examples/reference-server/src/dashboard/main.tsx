/**
 * The reference dashboard's entry point, bundled for the browser by the server (esbuild). One
 * `LockstepClient` per tab, over one WebSocket to the server that served the page: it carries the
 * streams (orchestration, tasks, focus) and the terminals. The streams are kept in IndexedDB
 * (docs/offline.md): a reload shows the board at once, then catches up by delta, and commands made
 * while the server is away survive a reload. A second tab finds the database taken and works in memory.
 */
import { createClient } from '@lockstep/client';
import { indexedDbStorage } from '@lockstep/client/persist-indexeddb';
import { LockstepProvider } from '@lockstep/react';
import { webSocketConnector } from '@lockstep/ws';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { DASHBOARD_ROOT_ID, WS_PATH } from '../contract.js';
import { App } from './App.js';

const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
const client = createClient({
  connect: webSocketConnector(`${scheme}://${location.host}${WS_PATH}`),
  // A tab that lost the server comes back quickly once it is there again.
  backoff: { initialMs: 200, maxMs: 5_000 },
  persistence: indexedDbStorage({ name: 'lockstep-dashboard' }),
});

const root = document.getElementById(DASHBOARD_ROOT_ID);
if (!root) throw new Error(`the page has no #${DASHBOARD_ROOT_ID} element`);
createRoot(root).render(
  <StrictMode>
    <LockstepProvider client={client}>
      <App />
    </LockstepProvider>
  </StrictMode>,
);
