import { ConnectionIndicator } from './ConnectionIndicator.js';
import { DaemonStatusLine } from './DaemonStatusLine.js';
import { FocusGrid } from './FocusGrid.js';
import { LayoutSwitch, useLayout } from './LayoutSwitch.js';
import { Orchestration } from './Orchestration.js';
import { ProjectPicker } from './ProjectPicker.js';
import { ProjectProvider, TERMINALS_PROJECT, useProject, useProjectNavigation } from './project.js';
import { Sessions } from './Sessions.js';
import { TaskBoard } from './TaskBoard.js';
import { ToastList, ToastProvider } from './toasts.js';

/** The reference dashboard: everything a Lockstep hub keeps in sync, live, for the project picked. */
export function App() {
  return (
    <ToastProvider>
      <ProjectProvider>
        <Dashboard />
      </ProjectProvider>
    </ToastProvider>
  );
}

/**
 * The window, filled: the top bar (project, layout, the daemon's programs, connection), orchestration and sessions in a
 * side column, and the main area — the task board, the terminals, or both (the layout switch). Each
 * column scrolls on its own, so a long board never pushes the terminals out of the window. A
 * project's panels start afresh when another project is opened.
 */
function Dashboard() {
  const project = useProject();
  const [layout] = useLayout();
  return (
    <div className="app">
      <header className="topbar">
        <h1>
          Lockstep <span className="muted">reference dashboard</span>
        </h1>
        <ProjectPicker />
        <LayoutSwitch />
        <DaemonStatusLine />
        <ConnectionIndicator />
      </header>
      <main className="layout">
        <div className="side">
          <Orchestration />
          <Sessions key={project} />
        </div>
        <div className={`main main-${layout}`} data-testid="main" data-layout={layout}>
          {layout !== 'terminals' && <TaskBoard key={`board:${project}`} />}
          {layout !== 'board' &&
            (project === TERMINALS_PROJECT ? <FocusGrid key={`focus:${project}`} /> : <NoTerminals key={`none:${project}`} project={project} />)}
        </div>
      </main>
      <ToastList />
    </div>
  );
}

/** Where the terminals would be, for a project whose sessions have none on this server. */
function NoTerminals({ project }: { project: string }) {
  const { open } = useProjectNavigation();
  return (
    <section className="panel focus no-terminals" data-testid="no-terminals" aria-labelledby="no-terminals-title">
      <header className="panel-header">
        <h2 id="no-terminals-title">Terminals</h2>
      </header>
      <p className="empty">
        This server runs a terminal for each session of project <code>{TERMINALS_PROJECT}</code> only. The sessions of <code>{project}</code> are records:
        whoever runs them (an agent, the CLI, another app) reports their status, which shows in the session list.
      </p>
      <p>
        <button type="button" className="small" onClick={() => open(TERMINALS_PROJECT)} data-testid="open-terminals-project">
          Open {TERMINALS_PROJECT}
        </button>
      </p>
    </section>
  );
}
