import { STREAM_KEY_PATTERN } from '@lockstep/core';
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import { PROJECT_ID } from '../contract.js';
import { readPreference, usePreference, writePreference } from './preferences.js';

/**
 * The project the dashboard shows: its task board (`tasks/<project>`) and focus set
 * (`focus/<project>`). It is in the address — `/?project=proj_123`, nothing for the default project —
 * so a link, a bookmark, reload and Back open the same one. The projects opened lately are
 * remembered in this browser (the picker offers them beside the ones the server lists).
 */

/** The query parameter naming the project. */
export const PROJECT_PARAM = 'project';

/**
 * The one project whose sessions get a shell on this server (see docs/reference-server.md,
 * "Terminals"). Sessions of every other project are records only: their status is whatever the
 * client that runs them reports.
 */
export const TERMINALS_PROJECT = PROJECT_ID;

const RECENT_KEY = 'recentProjects';
const MAX_RECENT = 8;

export function isProjectId(value: string): boolean {
  return STREAM_KEY_PATTERN.test(value);
}

interface ProjectContextValue {
  project: string;
  /** The `?project=` the address named when it is not a project id (the default project is shown instead). */
  invalid: string | undefined;
  /** Opens a project: the address changes (a new history entry) and it joins the recent ones. */
  open: (projectId: string) => void;
  /** Projects opened in this browser, latest first. */
  recent: readonly string[];
}

const ProjectContext = createContext<ProjectContextValue | null>(null);

function fromAddress(): { project: string; invalid: string | undefined } {
  const named = new URLSearchParams(location.search).get(PROJECT_PARAM);
  if (named === null || named === '') return { project: PROJECT_ID, invalid: undefined };
  return isProjectId(named) ? { project: named, invalid: undefined } : { project: PROJECT_ID, invalid: named };
}

const parseRecent = (stored: string): string[] | undefined => {
  try {
    const list: unknown = JSON.parse(stored);
    return Array.isArray(list) ? list.filter((id): id is string => typeof id === 'string' && isProjectId(id)).slice(0, MAX_RECENT) : undefined;
  } catch {
    return undefined;
  }
};
const NO_RECENT: readonly string[] = [];

export function ProjectProvider({ children }: { children: ReactNode }) {
  const [current, setCurrent] = useState(fromAddress);
  const [recent] = usePreference<readonly string[]>(RECENT_KEY, parseRecent, NO_RECENT, JSON.stringify);
  const { project } = current;

  // Back and Forward.
  useEffect(() => {
    const onPopState = () => setCurrent(fromAddress());
    window.addEventListener('popstate', onPopState);
    return () => window.removeEventListener('popstate', onPopState);
  }, []);
  // The shown project becomes the latest recent one, however it was opened (picker, link, Back) —
  // when it is opened, not whenever another tab reorders the list.
  useEffect(() => {
    const list = parseRecent(readPreference(RECENT_KEY) ?? '[]') ?? [];
    if (list[0] !== project) writePreference(RECENT_KEY, JSON.stringify([project, ...list.filter((id) => id !== project)].slice(0, MAX_RECENT)));
  }, [project]);
  useEffect(() => {
    document.title = project === PROJECT_ID ? 'Lockstep' : `${project} · Lockstep`;
  }, [project]);

  const open = useCallback((projectId: string) => {
    if (!isProjectId(projectId)) return;
    const url = new URL(location.href);
    if (projectId === PROJECT_ID) url.searchParams.delete(PROJECT_PARAM);
    else url.searchParams.set(PROJECT_PARAM, projectId);
    if (url.href !== location.href) history.pushState(null, '', url);
    setCurrent({ project: projectId, invalid: undefined });
  }, []);

  const value = useMemo(() => ({ project, invalid: current.invalid, open, recent }), [project, current.invalid, open, recent]);
  return <ProjectContext.Provider value={value}>{children}</ProjectContext.Provider>;
}

function useProjectContext(): ProjectContextValue {
  const value = useContext(ProjectContext);
  if (!value) throw new Error('useProject needs a <ProjectProvider>');
  return value;
}

/** The project shown: the key of its `tasks/…` and `focus/…` streams. */
export function useProject(): string {
  return useProjectContext().project;
}

/** Switching projects, and the ones opened lately. */
export function useProjectNavigation(): Pick<ProjectContextValue, 'open' | 'recent' | 'invalid'> {
  const { open, recent, invalid } = useProjectContext();
  return { open, recent, invalid };
}
