import { focusDomain, nextEviction, tasksDomain, type Session, type TasksState } from '@lockstep/core';
import { useCommand, useStream } from '@lockstep/react';
import { useCallback, useRef, useState } from 'react';
import { chooserRows, gridColumns, gridSizes, initialChoice, toggleChoice } from './focusLayout.js';
import { useProject } from './project.js';
import { TerminalPane } from './TerminalPane.js';
import { useReport } from './toasts.js';
import { useLoaded } from './useLoaded.js';
import { useFocusEvictions } from './useFocusEvictions.js';

const bySessions = (state: TasksState) => state.sessions;
/** Typing keeps a session "active" (so it is not the one evicted), at most one touch per interval. */
const TOUCH_INTERVAL_MS = 5_000;

/**
 * The focused sessions' terminals, live, as a grid of at most `maxFocused` tiles (4 unless the grid
 * size says otherwise: `focus.configure`). Focusing one more evicts the least recently active; the
 * tile that would go next is marked, and evictions are announced. "Choose…" picks the whole grid at
 * once (`focus.setMany`): the sessions ticked, in the order ticked.
 */
export function FocusGrid() {
  const project = useProject();
  const focus = useStream(focusDomain, project);
  const sessions = useStream(tasksDomain, project, bySessions);
  const dispatch = useCommand(focusDomain, project);
  const report = useReport();
  const evictions = useFocusEvictions(project);
  const loaded = useLoaded(focusDomain, project);
  const [choosing, setChoosing] = useState<readonly string[] | undefined>(undefined);
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
  const tiles = focus.focused.length;
  const columns = gridColumns(tiles);

  const resize = (maxFocused: number) => report(dispatch({ type: 'focus.configure', payload: { maxFocused } }));
  const focusChosen = (sessionIds: readonly string[]) => {
    report(dispatch({ type: 'focus.setMany', payload: { sessionIds: [...sessionIds] } }));
    setChoosing(undefined);
  };

  return (
    <section className="panel focus" data-testid="focus-grid" data-focused-count={tiles} data-max-focused={focus.maxFocused} aria-labelledby="focus-title">
      <header className="panel-header">
        <h2 id="focus-title">Focus</h2>
        <span className="muted" data-testid="focus-count">
          {tiles} of {focus.maxFocused} · least active makes room
        </span>
        <span className="focus-controls">
          <label className="muted">
            Grid{' '}
            <select
              value={focus.maxFocused}
              onChange={(event) => resize(Number(event.target.value))}
              aria-label="Grid size: how many sessions may be focused"
              data-testid="focus-grid-size"
            >
              {gridSizes(focus.maxFocused).map((size) => (
                <option key={size} value={size}>
                  {size} {size === 1 ? 'tile' : 'tiles'}
                </option>
              ))}
            </select>
          </label>
          <button
            type="button"
            className="small"
            aria-expanded={choosing !== undefined}
            onClick={() => setChoosing(choosing === undefined ? initialChoice(focus.focused, sessions) : undefined)}
            data-testid="focus-choose"
          >
            Choose…
          </button>
        </span>
      </header>
      {choosing !== undefined && (
        <FocusChooser
          sessions={sessions}
          chosen={choosing}
          max={focus.maxFocused}
          onToggle={(sessionId) => setChoosing(toggleChoice(choosing, sessionId, focus.maxFocused))}
          onApply={() => focusChosen(choosing)}
          onCancel={() => setChoosing(undefined)}
        />
      )}
      {evictions.map((eviction) => (
        <div key={`${eviction.sessionId}@${eviction.at}`} className="notice" role="status" data-testid="eviction-notice" data-session-id={eviction.sessionId}>
          <strong>{nameOf(eviction.sessionId)}</strong> left the focus (least active) to make room for <strong>{nameOf(eviction.bySessionId)}</strong>.
        </div>
      ))}
      {tiles === 0 ? (
        <p className="empty">{loaded ? 'Nothing focused. Click a session to see its terminal here, or choose a grid.' : 'Loading…'}</p>
      ) : (
        <div
          className={`grid grid-${Math.min(tiles, 4)}`}
          data-columns={columns}
          style={columns > 2 ? { gridTemplateColumns: `repeat(${columns}, minmax(0, 1fr))` } : undefined}
          data-testid="focus-tiles"
        >
          {focus.focused.map((sessionId) => {
            const session = sessions[sessionId];
            return (
              <div
                key={sessionId}
                className={`tile${sessionId === next ? ' next-out' : ''}`}
                data-testid="focus-tile"
                data-session-id={sessionId}
                data-next-out={sessionId === next}
                onFocusCapture={() => touch(sessionId)}
              >
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
                  <button
                    type="button"
                    className="icon tile-close"
                    aria-label={`Unfocus ${session?.name ?? sessionId}`}
                    onClick={() => report(dispatch({ type: 'focus.blur', payload: { sessionId } }))}
                    data-testid="focus-blur"
                  >
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

interface FocusChooserProps {
  sessions: Readonly<Record<string, Session>>;
  chosen: readonly string[];
  max: number;
  onToggle: (sessionId: string) => void;
  onApply: () => void;
  onCancel: () => void;
}

/** "Focus these": tick up to `max` sessions; their grid places follow the order they were ticked in. */
function FocusChooser({ sessions, chosen, max, onToggle, onApply, onCancel }: FocusChooserProps) {
  const rows = chooserRows(sessions, chosen);
  const full = chosen.length >= max;
  return (
    <div className="focus-chooser" role="group" aria-label="Choose the focused sessions" data-testid="focus-chooser">
      {rows.length === 0 ? (
        <p className="empty">No sessions to focus yet.</p>
      ) : (
        <ul>
          {rows.map(({ session, place }) => (
            <li key={session.id}>
              <label title={place === undefined && full ? `The grid holds ${max}: untick one, or make the grid larger` : undefined}>
                <input
                  type="checkbox"
                  checked={place !== undefined}
                  disabled={place === undefined && full}
                  onChange={() => onToggle(session.id)}
                  data-testid="focus-choice"
                  data-session-id={session.id}
                />
                <span className="focus-choice-place">{place ?? ''}</span>
                {session.name}
                {session.status !== 'running' && <span className="badge">{session.status}</span>}
              </label>
            </li>
          ))}
        </ul>
      )}
      <div className="focus-chooser-actions">
        <span className="muted">
          {chosen.length} of {max} chosen
        </span>
        <button type="button" className="small" onClick={onApply} data-testid="focus-choose-apply">
          {chosen.length === 0 ? 'Clear the focus' : `Focus these ${chosen.length}`}
        </button>
        <button type="button" className="small" onClick={onCancel} data-testid="focus-choose-cancel">
          Cancel
        </button>
      </div>
    </div>
  );
}
