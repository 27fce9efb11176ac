/**
 * The reference dashboard's entry point, bundled for the browser by the server (esbuild). One
 * `LockstepClient` per tab; the tabs of a browser share one WebSocket to the server that served the
 * page (`@lockstep/client/cross-tab`): the leader tab holds it, the others go through the leader —
 * the streams (orchestration, tasks, focus), the terminals and the daemon's calls alike. The streams
 * are kept in IndexedDB (docs/offline.md): a reload shows the board at once, then catches up by
 * delta, and commands made while the server is away survive a reload. The leader holds the
 * database; when it goes away, the next leader takes the database over and sends what it kept.
 */
import { focusDomain, orchestrationDomain, tasksDomain } from '@lockstep/core';
import { createClient } from '@lockstep/client';
import { crossTabConnection } from '@lockstep/client/cross-tab';
import { indexedDbStorage } from '@lockstep/client/persist-indexeddb';
import { LockstepProvider } from '@lockstep/react';
import { webSocketConnector } from '@lockstep/ws';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { DASHBOARD_ROOT_ID, WS_PATH } from '../contract.js';
import { App } from './App.js';
import { sharedConnection } from './sharedConnection.js';

const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
const tabs = crossTabConnection({
  connect: webSocketConnector(`${scheme}://${location.host}${WS_PATH}`),
  domains: [orchestrationDomain, tasksDomain, focusDomain],
  name: 'lockstep-dashboard',
});
sharedConnection.shared = tabs.election !== 'none';
const client = createClient({
  connect: tabs.connect,
  // A tab that lost the server comes back quickly once it is there again.
  backoff: { initialMs: 200, maxMs: 5_000 },
  persistence: indexedDbStorage({ name: 'lockstep-dashboard' }),
});
tabs.serve(client);
// Which tab holds the connection, for a curious developer and the browser tests (dashboardCrossTab.test.ts).
tabs.leader$.subscribe((leads) => document.getElementById(DASHBOARD_ROOT_ID)?.setAttribute('data-tab-leader', String(leads)));

const root = document.getElementById(DASHBOARD_ROOT_ID);
if (!root) throw new Error(`the page has no #${DASHBOARD_ROOT_ID} element`);
createRoot(root).render(
  <StrictMode>
    <LockstepProvider client={client}>
      <App />
    </LockstepProvider>
  </StrictMode>,
);
