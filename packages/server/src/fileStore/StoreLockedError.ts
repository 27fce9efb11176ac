/** Another process (or another store object in this one) owns the data directory. */
export class StoreLockedError extends Error {
  override readonly name = 'StoreLockedError';
  constructor(
    readonly directory: string,
    /** The owner, as its lock file says; undefined when the lock file could not be read. */
    readonly owner: { pid: number; host: string; since: string } | undefined,
  ) {
    const who =
      owner === undefined
        ? 'another process (its lock file is unreadable or still being written)'
        : owner.pid === process.pid
          ? `this process (pid ${owner.pid}) already, through another FileEventStore`
          : `process ${owner.pid} on ${owner.host} since ${owner.since}`;
    super(
      `data directory ${directory} is locked by ${who}. One process owns a directory at a time: stop the other one` +
        (owner !== undefined && owner.pid !== process.pid ? `, or, if no lockstep process has pid ${owner.pid}, delete ${directory}/lock` : ''),
    );
  }
}
