import { useEffect, useState } from 'react';
import { API_PREFIX } from '../contract.js';
import { getJson, hasRoute } from './api.js';
import { usePreference } from './preferences.js';

/**
 * The session profiles the operator configured (`GET /api/profiles`): what a new session of the
 * terminals project may run, by name — the server's default first. A session names its profile (and
 * the task's prompt, for a profile that takes one) in `session.create`, over the WebSocket like
 * every other command; the hub refuses an unknown profile. A server without the route, or with only
 * its default profile, gets no picker: its sessions run the default, as before profiles existed.
 */
export interface Profile {
  name: string;
  description: string;
  /** The profile takes the task's prompt (as an argument or on stdin). */
  acceptsPrompt: boolean;
  /** The server's default (what a session without a profile runs). */
  isDefault: boolean;
}

const PROFILES_PATH = `${API_PREFIX}/profiles`;
let loaded: Promise<readonly Profile[]> | undefined;

function loadProfiles(): Promise<readonly Profile[]> {
  loaded ??= (async () => {
    if (!(await hasRoute('GET', PROFILES_PATH))) return [];
    const answer = await getJson<{ profiles?: unknown }>(PROFILES_PATH);
    const list = Array.isArray(answer?.profiles) ? (answer.profiles as unknown[]) : [];
    return list.flatMap((entry): Profile[] => {
      const { name, description, acceptsPrompt, default: isDefault } = (entry ?? {}) as Record<string, unknown>;
      if (typeof name !== 'string' || name === '') return [];
      return [{ name, description: typeof description === 'string' ? description : '', acceptsPrompt: acceptsPrompt === true, isDefault: isDefault === true }];
    });
  })().catch(() => {
    loaded = undefined; // asked again by the next component that mounts
    return [];
  });
  return loaded;
}

/** The profiles, or an empty list while they load, when the server has none, or no such route. */
export function useProfiles(): readonly Profile[] {
  const [profiles, setProfiles] = useState<readonly Profile[]>([]);
  useEffect(() => {
    let live = true;
    void loadProfiles().then((list) => live && setProfiles(list));
    return () => {
      live = false;
    };
  }, []);
  return profiles;
}

const parseName = (stored: string) => stored;

/**
 * The profile picked for new sessions (remembered in this browser): one of `profiles`, else the
 * server's default. Undefined when there are none.
 */
export function useSelectedProfile(profiles: readonly Profile[]): [Profile | undefined, (name: string) => void] {
  const [name, setName] = usePreference('sessionProfile', parseName, '');
  return [profiles.find((profile) => profile.name === name) ?? profiles.find((profile) => profile.isDefault) ?? profiles[0], setName];
}

/** The `session.create` fields for a session running a profile (shared with the daemon service). */
export { profileFields } from '../taskSession.js';
