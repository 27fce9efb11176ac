import type { Clock } from '@lockstep/core';
import type { LockManagerLike, TabMessage } from './tabPlatform.js';

/** What an election needs of its tab group. @internal */
export interface ElectionHost {
  readonly tabId: string;
  readonly clock: Clock;
  post(message: TabMessage): void;
  /** This tab leads from now on. */
  lead(): void;
  /** This tab no longer leads: another one does (only the BroadcastChannel election ever demotes). */
  follow(): void;
}

/** Decides which tab of a group leads. @internal */
export interface LeaderElection {
  /** Resolves once this tab knows whether it leads or follows. */
  readonly decided: Promise<void>;
  /** An election message of another tab (`beat`, `claim`, `resign`, `leader`). */
  receive(message: TabMessage): void;
  /** Leaves: gives the lead up if held, and stops taking part. */
  close(): void;
}

/**
 * The Web Locks election: the tab holding the lock `name` leads; the others queue for it, and the
 * browser hands it to one of them the moment the holder closes, navigates away or crashes.
 * @internal
 */
export class LockElection implements LeaderElection {
  readonly decided: Promise<void>;
  #release: () => void = () => {};
  #closed = false;

  constructor(locks: LockManagerLike, name: string, host: ElectionHost) {
    const held = new Promise<void>((resolve) => (this.#release = resolve));
    // Lead at once if no tab does; otherwise follow, and queue for the lead.
    this.decided = new Promise<void>((decided) => {
      void locks.request(name, { ifAvailable: true }, (lock) => {
        decided();
        if (lock) {
          if (!this.#closed) host.lead();
          return held;
        }
        if (!this.#closed) {
          void locks.request(name, () => {
            if (this.#closed) return Promise.resolve();
            host.lead();
            return held;
          });
        }
        return Promise.resolve();
      });
    });
  }

  receive(): void {}

  close(): void {
    this.#closed = true;
    this.#release();
  }
}
