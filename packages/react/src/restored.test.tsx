// @vitest-environment happy-dom
import { createClient, memoryStorage } from '@lockstep/client';
import { createMemoryLink, tasksDomain } from '@lockstep/core';
import { cleanup, render, screen, waitFor } from '@testing-library/react';
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { LockstepProvider } from './LockstepProvider.js';
import { testWorld } from './test/world.js';
import { useConnectionStatus } from './useConnectionStatus.js';
import { useStream, useStreamStatus } from './useStream.js';

afterEach(cleanup);

const PROJECT = 'proj_offline';

describe('a persistent client under LockstepProvider', () => {
  it('renders the restored state on the first render of the children, then the hub’s', async () => {
    const w = testWorld();
    onTestFinished(() => w.close());
    for (const [id, title] of [
      ['t1', 'Stored one'],
      ['t2', 'Stored two'],
    ]) {
      await w.hub.execute({ id: `seed-${id}`, stream: `tasks/${PROJECT}`, type: 'task.create', payload: { id, title } });
    }
    const storage = memoryStorage();
    const connect = () => {
      const link = createMemoryLink();
      w.hub.accept(link.server);
      return link.client;
    };
    const first = createClient({ connect, persistence: storage });
    await first.stream(tasksDomain, PROJECT).waitFor(2);
    first.close();
    await first.flush();
    await w.hub.execute({ id: 'seed-t3', stream: `tasks/${PROJECT}`, type: 'task.create', payload: { id: 't3', title: 'Added meanwhile' } });

    const renders: string[] = [];
    function Board() {
      const titles = Object.values(useStream(tasksDomain, PROJECT).tasks).map((task) => task.title);
      const { restored } = useStreamStatus(tasksDomain, PROJECT);
      const { storage: where } = useConnectionStatus();
      renders.push(`${titles.join(', ')}${restored ? ' (restored)' : ''}`);
      return (
        <p data-testid="board">
          {titles.join(', ')} [{where}]
        </p>
      );
    }
    const second = createClient({ connect, persistence: storage });
    onTestFinished(() => second.close());
    render(
      <LockstepProvider client={second} fallback={<p data-testid="fallback">loading</p>}>
        <Board />
      </LockstepProvider>,
    );
    expect(screen.getByTestId('fallback')).toBeTruthy();
    await waitFor(() => expect(screen.getByTestId('board').textContent).toBe('Stored one, Stored two, Added meanwhile [persistent]'));
    expect(renders[0]).toBe('Stored one, Stored two (restored)');
    expect(renders.at(-1)).toBe('Stored one, Stored two, Added meanwhile');
  });
});
