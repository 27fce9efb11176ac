import { focusDomain, nextEviction, tasksDomain, type TasksState } from '@lockstep/core';
import { useCommand, useStream } from '@lockstep/react';
import { useCallback, useRef } from 'react';
import { PROJECT_ID } from '../contract.js';
import { TerminalPane } from './TerminalPane.js';
import { useReport } from './toasts.js';
import { useLoaded } from './useLoaded.js';
import { useFocusEvictions } from './useFocusEvictions.js';

const bySessions = (state: TasksState) => state.sessions;
/** Typing keeps a session "active" (so it is not the one evicted), at most one touch per interval. */
const TOUCH_INTERVAL_MS = 5_000;

/**
 * The focused sessions' terminals, live, at most `maxFocused` (4). Focusing one more evicts the
 * least recently active; the tile that would go next is marked, and evictions are announced.
 */
export function FocusGrid() {
  const focus = useStream(focusDomain, PROJECT_ID);
  const sessions = useStream(tasksDomain, PROJECT_ID, bySessions);
  const dispatch = useCommand(focusDomain, PROJECT_ID);
  const report = useReport();
  const evictions = useFocusEvictions();
  const loaded = useLoaded(focusDomain, PROJECT_ID);
  const next = nextEviction(focus);
  const lastTouch = useRef(new Map<string, number>());
  const touch = useCallback(
    (sessionId: string) => {
      const now = Date.now();
      if (now - (lastTouch.current.get(sessionId) ?? 0) < TOUCH_INTERVAL_MS) return;
      lastTouch.current.set(sessionId, now);
      report(dispatch({ type: 'focus.touch', payload: { sessionId } }));
    },
    [dispatch, report],
  );
  const nameOf = (id: string) => sessions[id]?.name ?? id;

  return (
    <section className="panel focus" data-testid="focus-grid" data-focused-count={focus.focused.length} aria-labelledby="focus-title">
      <header className="panel-header">
        <h2 id="focus-title">Focus</h2>
        <span className="muted">
          {focus.focused.length} of {focus.maxFocused} · least active makes room
        </span>
      </header>
      {evictions.map((eviction) => (
        <div key={`${eviction.sessionId}@${eviction.at}`} className="notice" role="status" data-testid="eviction-notice" data-session-id={eviction.sessionId}>
          <strong>{nameOf(eviction.sessionId)}</strong> left the focus (least active) to make room for <strong>{nameOf(eviction.bySessionId)}</strong>.
        </div>
      ))}
      {focus.focused.length === 0 ? (
        <p className="empty">{loaded ? 'Nothing focused. Click a session to see its terminal here.' : 'Loading…'}</p>
      ) : (
        <div className={`grid grid-${Math.min(focus.focused.length, 4)}`}>
          {focus.focused.map((sessionId) => {
            const session = sessions[sessionId];
            return (
              <div key={sessionId} className={`tile${sessionId === next ? ' next-out' : ''}`} data-testid="focus-tile" data-session-id={sessionId} data-next-out={sessionId === next} onFocusCapture={() => touch(sessionId)}>
                <div className="tile-head">
                  <span className={`status-dot session-${session?.status ?? 'exited'}`} aria-hidden="true" />
                  <span className="tile-name" data-testid="focus-tile-name">
                    {session?.name ?? sessionId}
                  </span>
                  {sessionId === next && (
                    <span className="badge warn" title="The least active focused session: focusing another one evicts it" data-testid="next-out">
                      next out
                    </span>
                  )}
                  <button type="button" className="icon tile-close" aria-label={`Unfocus ${session?.name ?? sessionId}`} onClick={() => report(dispatch({ type: 'focus.blur', payload: { sessionId } }))} data-testid="focus-blur">
                    ×
                  </button>
                </div>
                <TerminalPane terminalId={sessionId} onInput={() => touch(sessionId)} />
              </div>
            );
          })}
        </div>
      )}
    </section>
  );
}
