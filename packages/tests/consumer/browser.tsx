// The browser page of the pack smoke test, bundled with esbuild from the installed tarballs: React,
// @lockstep/react, @lockstep/client and @lockstep/ws against the hub named by `?hub=ws://…`.
import { createClient } from '@lockstep/client';
import { tasksDomain } from '@lockstep/core';
import { LockstepProvider, shallowEqual, useCommand, useConnectionStatus, useStream } from '@lockstep/react';
import { webSocketConnector } from '@lockstep/ws';
import { createRoot } from 'react-dom/client';

const params = new URLSearchParams(location.search);
const hub = params.get('hub')!;
// A browser presents the token as the lockstep.bearer.<base64url> subprotocol entry (no headers).
const token = params.get('token') ?? undefined;
const client = createClient({ connect: webSocketConnector(hub, token === undefined ? {} : { token }), clientId: 'browser-smoke' });

function Board() {
  const titles = useStream(
    tasksDomain,
    'browser-smoke',
    (state) =>
      Object.values(state.tasks)
        .map((task) => task.title)
        .sort(),
    shallowEqual,
  );
  const dispatch = useCommand(tasksDomain, 'browser-smoke');
  const { status, pending } = useConnectionStatus();
  const add = () => {
    dispatch({ type: 'task.create', payload: { title: 'from the browser' } }).catch((error: Error) => {
      document.title = `refused: ${error.message}`;
    });
  };
  return (
    <main>
      <p id="status">{`${status} · ${pending} pending`}</p>
      <button id="add" onClick={add}>
        Add a task
      </button>
      <ul id="titles">
        {titles.map((title) => (
          <li key={title}>{title}</li>
        ))}
      </ul>
    </main>
  );
}

createRoot(document.getElementById('root')!).render(
  <LockstepProvider client={client}>
    <Board />
  </LockstepProvider>,
);
