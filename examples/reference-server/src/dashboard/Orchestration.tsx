import { orchestrationDomain, type OrchestrationState } from '@lockstep/core';
import { useCommand, useStream, useStreamStatus } from '@lockstep/react';
import { Fragment, useState, type FormEvent } from 'react';
import { ORCHESTRATION_KEY } from '../contract.js';
import { CountField } from './CountField.js';
import { useReport } from './toasts.js';
import { useLoaded } from './useLoaded.js';

const byWorkspace = (state: OrchestrationState) => state.workspaces;
const byTotals = (state: OrchestrationState) => state.totals;

/** Running and desired agents per workspace, and the global totals (always the sums). */
export function Orchestration() {
  const workspaces = useStream(orchestrationDomain, ORCHESTRATION_KEY, byWorkspace);
  const totals = useStream(orchestrationDomain, ORCHESTRATION_KEY, byTotals);
  const { confirmedVersion } = useStreamStatus(orchestrationDomain, ORCHESTRATION_KEY);
  const dispatch = useCommand(orchestrationDomain, ORCHESTRATION_KEY);
  const report = useReport();
  const loaded = useLoaded(orchestrationDomain, ORCHESTRATION_KEY);
  const ids = Object.keys(workspaces).sort();

  const setDesired = (workspaceId: string, desired: number) => report(dispatch({ type: 'workspace.setDesired', payload: { workspaceId, desired } }));
  const setRunning = (workspaceId: string, running: number) => report(dispatch({ type: 'workspace.setRunning', payload: { workspaceId, running } }));
  const remove = (workspaceId: string) => report(dispatch({ type: 'workspace.remove', payload: { workspaceId } }));

  return (
    <section className="panel orchestration" data-testid="orchestration" aria-labelledby="orchestration-title">
      <header className="panel-header">
        <h2 id="orchestration-title">Orchestration</h2>
        <span className="muted" title="Version of orchestration/default confirmed by the hub">
          v{confirmedVersion}
        </span>
      </header>
      <div className="totals">
        <Total value={totals.desired} label="desired" testId="total-desired" />
        <Total value={totals.running} label="running" testId="total-running" />
        <Total value={ids.length} label={ids.length === 1 ? 'workspace' : 'workspaces'} testId="workspace-count" />
      </div>
      {ids.length === 0 ? (
        <p className="empty">{loaded ? 'No workspace reports agents yet. Add one below, or from an IDE, the CLI or the API.' : 'Loading…'}</p>
      ) : (
        <table className="workspaces">
          <thead>
            <tr>
              <th>Workspace</th>
              <th>Desired</th>
              <th>Running</th>
              <th aria-label="Actions" />
            </tr>
          </thead>
          <tbody>
            {ids.map((id) => {
              const entry = workspaces[id]!;
              return (
                <tr key={id} data-testid="workspace-row" data-workspace-id={id} data-desired={entry.desired} data-running={entry.running}>
                  <td
                    className="workspace-id"
                    title={entry.leasedTo ? `${id} — held by ${entry.leasedTo} (removed when it disconnects)` : id}
                    data-testid="workspace-id"
                  >
                    <WorkspaceName id={id} />
                    {entry.leasedTo && (
                      <span className="badge" data-testid="workspace-leased">
                        leased
                      </span>
                    )}
                  </td>
                  <td>
                    <CountField
                      value={entry.desired}
                      label={`Desired agents in ${id}`}
                      onCommit={(value) => setDesired(id, value)}
                      testId="workspace-desired"
                    />
                  </td>
                  <td>
                    <CountField
                      value={entry.running}
                      label={`Running agents in ${id}`}
                      onCommit={(value) => setRunning(id, value)}
                      testId="workspace-running"
                    />
                  </td>
                  <td>
                    <button
                      type="button"
                      className="icon danger"
                      aria-label={`Remove workspace ${id}`}
                      onClick={() => remove(id)}
                      data-testid="workspace-remove"
                    >
                      ×
                    </button>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      <AddWorkspace onAdd={setDesired} />
    </section>
  );
}

/** A workspace id (often a path) that wraps after its slashes rather than being cut off. */
function WorkspaceName({ id }: { id: string }) {
  const parts = id.split('/');
  return (
    <span className="workspace-name">
      {parts.map((part, index) => (
        <Fragment key={index}>
          {part}
          {index < parts.length - 1 && (
            <>
              /<wbr />
            </>
          )}
        </Fragment>
      ))}
    </span>
  );
}

function Total({ value, label, testId }: { value: number; label: string; testId: string }) {
  return (
    <div className="total">
      <span className="total-value" data-testid={testId}>
        {value}
      </span>
      <span className="total-label">{label}</span>
    </div>
  );
}

function AddWorkspace({ onAdd }: { onAdd: (workspaceId: string, desired: number) => void }) {
  const [workspaceId, setWorkspaceId] = useState('');
  const [desired, setDesired] = useState('1');
  const submit = (event: FormEvent) => {
    event.preventDefault();
    const id = workspaceId.trim();
    const count = Number(desired);
    if (!id || !Number.isInteger(count) || count < 0) return;
    onAdd(id, count);
    setWorkspaceId('');
  };
  return (
    <form className="inline-form" onSubmit={submit} data-testid="workspace-add-form">
      <input
        placeholder="Workspace id (a path)"
        aria-label="Workspace id"
        value={workspaceId}
        onChange={(event) => setWorkspaceId(event.target.value)}
        data-testid="workspace-add-id"
      />
      <input
        type="number"
        min={0}
        aria-label="Desired agents"
        className="narrow"
        value={desired}
        onChange={(event) => setDesired(event.target.value)}
        data-testid="workspace-add-desired"
      />
      <button type="submit" disabled={workspaceId.trim() === ''} data-testid="workspace-add-submit">
        Set desired
      </button>
    </form>
  );
}
