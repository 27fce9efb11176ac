import { describe, expect, it } from 'vitest';
import type { Event } from './envelope.js';
import type { SnapshotParams, SubscribeResult } from './protocol.js';
import { createRandom, type Random } from './random.js';
import { StreamSequencer } from './streamSequencer.js';

const STREAM = 'counter/a';

function event(version: number, value = version): Event {
  return { version, type: 'added', data: { value }, time: 0 };
}

function events(from: number, to: number): Event[] {
  const list: Event[] = [];
  for (let version = from; version <= to; version++) list.push(event(version));
  return list;
}

function answer(version: number, head: number, extra: Partial<SubscribeResult> = {}): SubscribeResult {
  return { stream: STREAM, version, head, oldestRetained: 1, ...extra };
}

describe('StreamSequencer', () => {
  it('applies events that follow the last applied version, skipping duplicates at their start', () => {
    const sequencer = new StreamSequencer();
    sequencer.restore(3);
    const batch = events(2, 6);
    expect(sequencer.events(batch)).toBe('apply');
    expect(sequencer.from).toBe(2);
    sequencer.applied(6);
    expect(sequencer.version).toBe(6);
    expect(sequencer.events(events(5, 6))).toBe('none');
  });

  it('answers gap for missing versions, at the start of a batch or inside it, and applies nothing of it', () => {
    const sequencer = new StreamSequencer();
    sequencer.restore(3);
    expect(sequencer.events(events(5, 6))).toBe('gap');
    expect(sequencer.events([event(4), event(6)])).toBe('gap');
    expect(sequencer.version).toBe(3);
  });

  it('ignores events while it holds no state, and subscribes with `since` only once it does', () => {
    const sequencer = new StreamSequencer();
    expect(sequencer.since).toBeUndefined();
    expect(sequencer.events(events(1, 2))).toBe('ignore');
    sequencer.restore(0);
    expect(sequencer.since).toBe(0);
    sequencer.reset();
    expect(sequencer.since).toBeUndefined();
  });

  it('holds the events notified before the answer and hands them over once it is handled', () => {
    const sequencer = new StreamSequencer();
    const epoch = sequencer.begin();
    expect(sequencer.awaiting).toBe(true);
    expect(sequencer.events(events(3, 4))).toBe('held');
    expect(sequencer.events(events(5, 5))).toBe('held');
    expect(sequencer.answer(epoch, answer(3, 3, { events: events(1, 3) }))).toBe('apply');
    expect(sequencer.hasState).toBe(true);
    expect(sequencer.from).toBe(0);
    sequencer.applied(3);
    const early = sequencer.takeEarly();
    expect(early.map((e) => e.version)).toEqual([3, 4, 5]);
    expect(sequencer.events(early)).toBe('apply');
    expect(sequencer.from).toBe(1);
    sequencer.applied(5);
    expect(sequencer.caughtUp).toBe(true);
    expect(sequencer.takeEarly()).toHaveLength(0);
  });

  it('fences off the answer of an older subscription, and a failure of one', () => {
    const sequencer = new StreamSequencer();
    const first = sequencer.begin();
    sequencer.events(events(1, 1));
    const second = sequencer.begin();
    expect(sequencer.takeEarly()).toHaveLength(0);
    expect(sequencer.answer(first, answer(5, 5, { snapshot: { n: 5 } }))).toBe('stale');
    expect(sequencer.failed(first)).toBe(false);
    expect(sequencer.awaiting).toBe(true);
    expect(sequencer.answer(second, answer(2, 2, { snapshot: { n: 2 } }))).toBe('snapshot');
    expect(sequencer.version).toBe(2);
    sequencer.fence();
    expect(sequencer.answer(second, answer(7, 7, { snapshot: {} }))).toBe('stale');
  });

  it('drops the held events when the answer itself leaves a gap', () => {
    const sequencer = new StreamSequencer();
    sequencer.restore(2);
    const epoch = sequencer.begin();
    sequencer.events(events(6, 6));
    expect(sequencer.answer(epoch, answer(5, 5, { events: events(4, 5) }))).toBe('gap');
    expect(sequencer.takeEarly()).toHaveLength(0);
    expect(sequencer.awaiting).toBe(false);
  });

  it('assembles a snapshot sent in pages, pages that came before their answer included', () => {
    const sequencer = new StreamSequencer();
    const epoch = sequencer.begin();
    const text = JSON.stringify({ n: 9 });
    const pages: SnapshotParams[] = [0, 1, 2].map((page) => ({
      stream: STREAM,
      version: 9,
      page,
      pages: 3,
      data: text.slice(page * 4, page === 2 ? undefined : page * 4 + 4),
    }));
    expect(sequencer.page(pages[0]!)).toBe('held');
    expect(sequencer.events(events(10, 10))).toBe('held');
    expect(sequencer.answer(epoch, answer(9, 9, { snapshotPages: 3 }))).toBe('pages');
    expect(sequencer.assembling).toBe(true);
    expect(sequencer.awaiting).toBe(true);
    const held = sequencer.takeEarlyPages();
    expect(held).toHaveLength(1);
    expect(sequencer.page(held[0]!)).toBe('more');
    expect(sequencer.page(pages[1]!)).toBe('more');
    expect(sequencer.page(pages[2]!)).toBe('complete');
    const complete = sequencer.takeSnapshot()!;
    expect(complete.text).toBe(text);
    expect(complete.epoch).toBe(epoch);
    expect(complete.result).not.toHaveProperty('snapshotPages');
    expect(sequencer.answer(complete.epoch, { ...complete.result, snapshot: JSON.parse(complete.text) })).toBe('snapshot');
    expect(sequencer.version).toBe(9);
    expect(sequencer.takeEarly().map((e) => e.version)).toEqual([10]);
  });

  it('answers gap for a page out of order or of another snapshot, and ignores pages nobody waits for', () => {
    const sequencer = new StreamSequencer();
    expect(sequencer.page({ stream: STREAM, version: 1, page: 0, pages: 1, data: '1' })).toBe('ignore');
    const epoch = sequencer.begin();
    sequencer.answer(epoch, answer(4, 4, { snapshotPages: 2 }));
    expect(sequencer.page({ stream: STREAM, version: 4, page: 1, pages: 2, data: '' })).toBe('gap');
    expect(sequencer.assembling).toBe(false);
    const again = sequencer.begin();
    sequencer.answer(again, answer(4, 4, { snapshotPages: 2 }));
    expect(sequencer.page({ stream: STREAM, version: 3, page: 0, pages: 2, data: '' })).toBe('gap');
  });

  it('stops: nothing awaited, nothing held', () => {
    const sequencer = new StreamSequencer();
    sequencer.restore(1);
    const epoch = sequencer.begin();
    sequencer.events(events(2, 2));
    sequencer.stop();
    expect(sequencer.awaiting).toBe(false);
    expect(sequencer.takeEarly()).toHaveLength(0);
    // The answer may still come (the epoch stays): it is applied as usual.
    expect(sequencer.answer(epoch, answer(2, 2, { events: events(2, 2) }))).toBe('apply');
  });
});

// ---------------------------------------------------------------------------------------------
// Seeded random runs: a hub, a connection that loses, repeats and reorders, a subscriber
// ---------------------------------------------------------------------------------------------

type Message =
  | { kind: 'answer'; epoch: number; result: SubscribeResult }
  | { kind: 'events'; events: Event[] }
  | { kind: 'page'; page: SnapshotParams }
  | { kind: 'resync' };

/** The hub's side: a log whose oldest events are dropped, answers to subscribe, live broadcasts. */
class ModelHub {
  /** values[v - 1]: the value event v adds to the state. */
  readonly values: number[] = [];
  oldestRetained = 1;
  subscribed = false;

  constructor(private readonly random: Random) {}

  get head(): number {
    return this.values.length;
  }

  stateAt(version: number): number {
    let sum = 0;
    for (let v = 1; v <= version; v++) sum += this.values[v - 1]!;
    return sum;
  }

  eventsBetween(from: number, to: number): Event[] {
    const list: Event[] = [];
    for (let version = from; version <= to; version++) list.push(event(version, this.values[version - 1]));
    return list;
  }

  append(count: number): Event[] {
    const from = this.head + 1;
    for (let i = 0; i < count; i++) this.values.push(1 + this.random.int(9));
    if (this.random.chance(0.2)) this.oldestRetained = Math.max(this.oldestRetained, this.head - this.random.int(6));
    return this.eventsBetween(from, this.head);
  }

  /** What the hub sends for `subscribe {since}`: the answer, then catch-up pages or snapshot pages. */
  subscribe(epoch: number, since: number | undefined): Message[] {
    this.subscribed = true;
    const head = this.head;
    const base = { stream: STREAM, head, oldestRetained: this.oldestRetained };
    if (since === undefined && this.random.chance(0.5)) {
      // Events from the start, when all are retained (as the hub answers a subscribe without `since`).
      if (this.oldestRetained <= 1) return this.#catchUp(epoch, 0, base);
    } else if (since !== undefined && since >= this.oldestRetained - 1 && since <= head) {
      return this.#catchUp(epoch, since, base);
    }
    const snapshot = { sum: this.stateAt(head) };
    if (!this.random.chance(0.4)) return [{ kind: 'answer', epoch, result: { ...base, version: head, snapshot } }];
    const text = JSON.stringify(snapshot);
    const pages = 1 + this.random.int(Math.min(4, text.length));
    const size = Math.ceil(text.length / pages);
    const messages: Message[] = [{ kind: 'answer', epoch, result: { ...base, version: head, snapshotPages: pages } }];
    for (let page = 0; page < pages; page++) {
      messages.push({ kind: 'page', page: { stream: STREAM, version: head, page, pages, data: text.slice(page * size, (page + 1) * size) } });
    }
    return messages;
  }

  /** Events after `since`: some in the answer, the rest in catch-up notifications right behind it. */
  #catchUp(epoch: number, since: number, base: Omit<SubscribeResult, 'version'>): Message[] {
    const head = this.head;
    const inAnswer = Math.min(head, since + this.random.int(head - since + 1));
    const messages: Message[] = [{ kind: 'answer', epoch, result: { ...base, version: inAnswer, events: this.eventsBetween(since + 1, inAnswer) } }];
    for (let from = inAnswer + 1; from <= head;) {
      const to = Math.min(head, from + this.random.int(3));
      messages.push({ kind: 'events', events: this.eventsBetween(from, to) });
      from = to + 1;
    }
    return messages;
  }
}

/** A subscriber doing what the sequencer tells it, and checking what it applies against the hub's log. */
class Subscriber {
  readonly sequencer = new StreamSequencer();
  /** Kept apart from the sequencer's: the version this subscriber's state is at. */
  version = 0;
  state = 0;
  applied = 0;
  readonly requests: Array<{ epoch: number; since: number | undefined }> = [];

  constructor(
    private readonly hub: ModelHub,
    private readonly context: () => string,
  ) {}

  subscribe(): void {
    const epoch = this.sequencer.begin();
    this.requests.push({ epoch, since: this.sequencer.since });
  }

  receive(message: Message): void {
    if (message.kind === 'events') this.#events(message.events);
    else if (message.kind === 'page') this.#page(message.page);
    else if (message.kind === 'resync') this.subscribe();
    else this.#answer(message.epoch, message.result);
  }

  #answer(epoch: number, result: SubscribeResult): void {
    const sequencer = this.sequencer;
    const verdict = sequencer.answer(epoch, result);
    if (verdict === 'stale') return;
    if (verdict === 'pages') {
      for (const page of sequencer.takeEarlyPages()) this.#page(page);
      return;
    }
    if (verdict === 'gap') return this.subscribe();
    if (verdict === 'snapshot') {
      expect(result.version, `${this.context()}: a snapshot behind the state`).toBeGreaterThanOrEqual(this.version);
      this.version = result.version;
      this.state = (result.snapshot as { sum: number }).sum;
      this.#check();
    } else if (verdict === 'apply') {
      this.#apply(result.events!, sequencer.from);
    }
    const early = sequencer.takeEarly();
    if (early.length > 0) this.#events(early);
  }

  #events(events: readonly Event[]): void {
    const verdict = this.sequencer.events(events);
    if (verdict === 'apply') this.#apply(events, this.sequencer.from);
    else if (verdict === 'gap') this.subscribe();
  }

  #page(page: SnapshotParams): void {
    const verdict = this.sequencer.page(page);
    if (verdict === 'gap') return this.subscribe();
    if (verdict !== 'complete') return;
    const { text, epoch, result } = this.sequencer.takeSnapshot()!;
    this.#answer(epoch, { ...result, snapshot: JSON.parse(text) });
  }

  #apply(events: readonly Event[], from: number): void {
    for (let i = from; i < events.length; i++) {
      const e = events[i]!;
      expect(e.version, `${this.context()}: applied out of order or with a gap`).toBe(this.version + 1);
      this.version = e.version;
      this.state += (e.data as { value: number }).value;
      this.applied++;
      this.sequencer.applied(e.version);
    }
    this.#check();
  }

  #check(): void {
    expect(this.sequencer.version, this.context()).toBe(this.version);
    expect(this.state, `${this.context()}: state at version ${this.version}`).toBe(this.hub.stateAt(this.version));
  }
}

/**
 * One run: the hub appends and broadcasts; the connection delivers in order, or loses, repeats and
 * reorders messages; the subscriber reconnects and is told to resync. Whatever happens, it applies
 * versions one by one in order (checked per event), and once the faults stop it reaches the head.
 */
function run(seed: number, steps: number): { applied: number; snapshots: number } {
  const random = createRandom(seed);
  const hub = new ModelHub(random);
  let step = 0;
  const subscriber = new Subscriber(hub, () => `seed ${seed} (LOCKSTEP_SEED=${seed} to replay), step ${step}`);
  let queue: Message[] = [];
  const sent: Message[] = [];
  let snapshots = 0;
  const send = (message: Message) => {
    queue.push(message);
    if (message.kind === 'events') sent.push(message);
    if (message.kind === 'answer' && message.result.events === undefined) snapshots++;
  };
  const serveRequests = () => {
    for (const request of subscriber.requests.splice(0)) for (const message of hub.subscribe(request.epoch, request.since)) send(message);
  };
  subscriber.subscribe();
  for (; step < steps; step++) {
    serveRequests();
    const roll = random.next();
    if (roll < 0.3) {
      const appended = hub.append(1 + random.int(3));
      if (hub.subscribed) send({ kind: 'events', events: appended });
    } else if (roll < 0.75) {
      const message = queue.shift();
      if (message) subscriber.receive(message);
    } else if (roll < 0.8 && queue.length > 1) {
      // Reordered: a later message overtakes.
      const [message] = queue.splice(1 + random.int(queue.length - 1), 1);
      subscriber.receive(message!);
    } else if (roll < 0.85) {
      queue.shift(); // lost
    } else if (roll < 0.9 && sent.length > 0) {
      subscriber.receive(random.pick(sent)); // repeated
    } else if (roll < 0.93) {
      // Reconnect: the connection's messages are gone, the hub forgets the subscription.
      queue = [];
      hub.subscribed = false;
      subscriber.sequencer.stop();
      subscriber.subscribe();
    } else if (roll < 0.96) {
      hub.subscribed = false;
      send({ kind: 'resync' });
    }
  }
  // The faults stop: everything is delivered in order, and the subscriber catches up.
  for (let round = 0; round < 1_000 && !(subscriber.version === hub.head && subscriber.sequencer.caughtUp && queue.length === 0); round++) {
    serveRequests();
    const message = queue.shift();
    if (message) subscriber.receive(message);
    else if (!hub.subscribed || subscriber.version < hub.head) subscriber.subscribe();
  }
  expect(subscriber.version, `seed ${seed}: caught up with the head`).toBe(hub.head);
  return { applied: subscriber.applied, snapshots };
}

describe('StreamSequencer under random interleavings', () => {
  const seeds = process.env['LOCKSTEP_SEED'] ? [Number(process.env['LOCKSTEP_SEED'])] : [1, 2, 3, 4, 5, 6, 7, 8, 20261207];
  for (const seed of seeds) {
    it(`applies every version once, in order, without a gap, through lost, repeated and reordered messages, reconnects and resyncs (seed ${seed})`, () => {
      const { applied, snapshots } = run(seed, 3_000);
      // The run exercised both ways of catching up.
      expect(applied, `seed ${seed}`).toBeGreaterThan(0);
      expect(snapshots, `seed ${seed}`).toBeGreaterThan(0);
    });
  }
});
