import { findAnnouncedToken, runtimeDirectory } from '@lockstep/server';
import type { ClientEnv } from './clientArgs.js';

/**
 * The token a hub on this machine left for its user's clients (`<runtime>/servers/<port>.token`,
 * written by `lockstep serve` and the reference server), when `server` is a loopback address;
 * undefined otherwise. Another user's hub keeps its file where this user cannot read it.
 */
export async function localServerToken(server: string, env: ClientEnv): Promise<string | undefined> {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    return undefined;
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (!(host === 'localhost' || host === '::1' || /^127\./.test(host))) return undefined;
  const port = Number(url.port || (url.protocol === 'wss:' ? 443 : 80));
  return findAnnouncedToken(port, runtimeDirectory(env));
}
