import { useRef } from 'react';
import { useTerminal } from './useTerminal.js';

const PHASE_LABELS = {
  attaching: 'connecting…',
  live: 'live',
  exited: 'exited',
  missing: 'starting…',
  offline: 'offline',
  error: 'error',
} as const;

/** A live terminal: the hub's terminal `terminalId` in xterm.js. */
export function TerminalPane({ terminalId, onInput }: { terminalId: string; onInput?: () => void }) {
  const container = useRef<HTMLDivElement>(null);
  const state = useTerminal(container, terminalId, onInput ? { onInput } : {});
  return (
    <div className="terminal-pane" data-testid="terminal-pane" data-terminal-id={terminalId} data-phase={state.phase} data-run-id={state.runId}>
      <div className="terminal-host" ref={container} data-testid="terminal" />
      {state.phase !== 'live' && (
        <span className={`terminal-phase phase-${state.phase}`} data-testid="terminal-phase" title={state.message}>
          {PHASE_LABELS[state.phase]}
          {state.phase === 'exited' && state.exitCode !== undefined && ` (${state.exitCode})`}
        </span>
      )}
    </div>
  );
}
