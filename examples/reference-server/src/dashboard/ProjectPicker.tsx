import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { PROJECT_ID } from '../contract.js';
import { getJson, hasRoute } from './api.js';
import { isProjectId, useProject, useProjectNavigation } from './project.js';

const OTHER = '\u0000other';

/**
 * The project picker in the top bar: the projects the server knows (`GET /api/projects`: every task
 * board in its store, asked again whenever the picker or the window gets focus), those opened in
 * this browser lately, and "Open another…" to type a project id — a project nobody has written to
 * yet starts when a task or session is created in it.
 */
export function ProjectPicker() {
  const project = useProject();
  const { open, recent, invalid } = useProjectNavigation();
  const { known, refresh } = useServerProjects();
  const [typing, setTyping] = useState(false);
  const [draft, setDraft] = useState('');
  const choices = [...new Set([PROJECT_ID, project, ...known, ...recent])].sort(
    (a, b) => Number(b === PROJECT_ID) - Number(a === PROJECT_ID) || a.localeCompare(b),
  );

  const submit = (event: FormEvent) => {
    event.preventDefault();
    const id = draft.trim();
    if (!isProjectId(id)) return;
    open(id);
    setTyping(false);
    setDraft('');
  };
  const draftValid = isProjectId(draft.trim());

  return (
    <div className="project-picker" data-testid="project-picker" data-project={project}>
      <label className="project-label" title="The project's task board is the stream tasks/<project>, its focus set focus/<project>">
        project
        <select
          value={typing ? OTHER : project}
          onFocus={refresh}
          onChange={(event) => {
            if (event.target.value === OTHER) setTyping(true);
            else {
              setTyping(false);
              open(event.target.value);
            }
          }}
          data-testid="project-select"
        >
          {choices.map((id) => (
            <option key={id} value={id} data-testid="project-option">
              {id}
            </option>
          ))}
          <option value={OTHER}>Open another…</option>
        </select>
      </label>
      {typing && (
        <form className="project-form" onSubmit={submit} data-testid="project-form">
          <input
            autoFocus
            placeholder="project id, e.g. proj_123"
            aria-label="Project id"
            aria-invalid={draft.trim() !== '' && !draftValid}
            title="Letters, digits and _ . : @ -, not starting with . : @ -"
            value={draft}
            maxLength={128}
            onChange={(event) => setDraft(event.target.value)}
            onKeyDown={(event) => event.key === 'Escape' && setTyping(false)}
            data-testid="project-input"
          />
          <button type="submit" disabled={!draftValid} data-testid="project-open">
            Open
          </button>
        </form>
      )}
      {invalid !== undefined && (
        <span
          className="badge warn"
          role="alert"
          data-testid="project-invalid"
          title="Project ids are letters, digits and _ . : @ -, not starting with . : @ -"
        >
          “{invalid}” is no project id
        </span>
      )}
    </div>
  );
}

/** The projects `GET /api/projects` lists (none when the server has no such route). */
function useServerProjects(): { known: readonly string[]; refresh: () => void } {
  const [known, setKnown] = useState<readonly string[]>([]);
  const refresh = useCallback(() => {
    void (async () => {
      if (!(await hasRoute('GET', '/api/projects'))) return;
      const answer = await getJson<{ projects?: Array<{ projectId?: unknown }> }>('/api/projects');
      const ids = (answer?.projects ?? []).map((entry) => entry.projectId).filter((id): id is string => typeof id === 'string' && isProjectId(id));
      setKnown((previous) => (previous.join('\n') === ids.join('\n') ? previous : ids));
    })().catch(() => {
      // Offline or signed out: the picker keeps what it had; the connection indicator says why.
    });
  }, []);
  useEffect(() => {
    refresh();
    window.addEventListener('focus', refresh);
    return () => window.removeEventListener('focus', refresh);
  }, [refresh]);
  return { known, refresh };
}
