import { ConnectionIndicator } from './ConnectionIndicator.js';
import { FocusGrid } from './FocusGrid.js';
import { Orchestration } from './Orchestration.js';
import { Sessions } from './Sessions.js';
import { TaskBoard } from './TaskBoard.js';
import { ToastList, ToastProvider } from './toasts.js';
import { PROJECT_ID } from '../contract.js';

/** The reference dashboard: everything a Lockstep hub keeps in sync, live, for one project. */
export function App() {
  return (
    <ToastProvider>
      <div className="app">
        <header className="topbar">
          <h1>
            Lockstep <span className="muted">reference dashboard</span>
          </h1>
          <span className="project" title="tasks/… and focus/… stream key">
            project <code>{PROJECT_ID}</code>
          </span>
          <ConnectionIndicator />
        </header>
        <main className="layout">
          <div className="side">
            <Orchestration />
            <Sessions />
          </div>
          <div className="main">
            <TaskBoard />
            <FocusGrid />
          </div>
        </main>
        <ToastList />
      </div>
    </ToastProvider>
  );
}
