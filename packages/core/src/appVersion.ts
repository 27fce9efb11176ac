import { LockstepError } from './errors.js';
import type { AppInfo, AppRequirement } from './protocol.js';
import { satisfies } from './semver.js';

/**
 * `INCOMPATIBLE_APP` when `own` says what it accepts (`accepts`, a semver range) and the peer's
 * application is not that: another name, a version outside the range, or none. Undefined when the
 * peer is accepted, or when `own` accepts anything. `data` names both sides: `{app: own, peer}`.
 */
export function incompatibleApp(own: AppRequirement | undefined, peer: AppInfo | undefined, side: 'hub' | 'client'): LockstepError | undefined {
  if (own?.accepts === undefined) return undefined;
  if (peer !== undefined && peer.name === own.name && satisfies(peer.version, own.accepts)) return undefined;
  const wanted = side === 'hub' ? `this hub accepts ${own.name} ${own.accepts} clients` : `this client needs a ${own.name} ${own.accepts} hub`;
  const got = peer === undefined ? `the ${side === 'hub' ? 'client' : 'hub'} named no app` : `not ${peer.name} ${peer.version}`;
  return new LockstepError('INCOMPATIBLE_APP', `${wanted}; ${got}`, {
    app: { name: own.name, version: own.version, accepts: own.accepts },
    peer: peer ?? null,
  });
}
