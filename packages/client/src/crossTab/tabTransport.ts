import type { Clock, Frame, Transport, TransportState } from '@lockstep/core';
import { BehaviorSubject, Subject, type Observable } from 'rxjs';
import type { TabMessage } from './tabPlatform.js';

/**
 * A follower tab's link to the leader tab, as a {@link Transport}: frames go over the
 * BroadcastChannel, addressed to whichever tab leads, and come back addressed to this tab. Open once
 * the leader said `opened`; closed when the leader closes it, another tab takes the lead, or no
 * leader answers within `openTimeoutMs`.
 * @internal
 */
export class TabTransport implements Transport {
  readonly #frames = new Subject<Frame>();
  readonly #state = new BehaviorSubject<TransportState>({ status: 'connecting' });
  readonly frames: Observable<Frame> = this.#frames.asObservable();
  readonly state: Observable<TransportState> = this.#state.asObservable();
  readonly info = { transport: 'cross-tab' };
  #leader: string | undefined;

  constructor(
    readonly tabId: string,
    private readonly post: (message: TabMessage) => void,
    clock: Clock,
    openTimeoutMs: number,
    private readonly onClosed: (transport: TabTransport) => void,
  ) {
    post({ kind: 'open', from: tabId, to: 'leader' });
    const timer = clock.setTimeout(() => {
      if (this.#state.value.status === 'connecting') this.#end('no leader tab answered', false);
    }, openTimeoutMs);
    this.state.subscribe((state) => state.status !== 'connecting' && clock.clearTimeout(timer));
  }

  /** A message for this tab (or a leader announcement). */
  receive(message: TabMessage): void {
    const status = this.#state.value.status;
    if (status === 'closed') return;
    if (message.kind === 'leader') {
      if (message.from !== this.#leader) this.#end('another tab took the lead', false);
    } else if (message.kind === 'opened' && status === 'connecting') {
      this.#leader = message.from;
      this.#state.next({ status: 'open' });
    } else if (message.from !== this.#leader) {
      return;
    } else if (message.kind === 'frame') {
      this.#frames.next(message.frame);
    } else if (message.kind === 'close') {
      this.#end(message.reason, false);
    }
  }

  send(frame: Frame): boolean {
    if (this.#state.value.status !== 'open' || typeof frame !== 'string') return false;
    this.post({ kind: 'frame', from: this.tabId, to: this.#leader!, frame });
    return true;
  }

  close(reason = 'closed'): void {
    this.#end(reason, true);
  }

  #end(reason: string, tell: boolean): void {
    if (this.#state.value.status === 'closed') return;
    if (tell && this.#leader !== undefined) this.post({ kind: 'close', from: this.tabId, to: this.#leader, reason });
    this.#state.next({ status: 'closed', reason });
    this.#state.complete();
    this.#frames.complete();
    this.onClosed(this);
  }
}
