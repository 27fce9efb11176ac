/**
 * The file store found damage it must not paper over: a bad record in the middle of the log
 * (followed by good ones), a base or sealed segment that does not read back whole, a log whose
 * records contradict each other, or a snapshot that fails its checksum. Opening stops; nothing is
 * skipped. `lockstep repair <dir>` (or {@link FileEventStore.repair}) cuts the log at `offset` after
 * keeping a copy of what it cuts.
 */
export class CorruptLogError extends Error {
  override readonly name = 'CorruptLogError';
  constructor(
    /** The damaged file. */
    readonly file: string,
    /** Byte offset of the first bad record in `file`. */
    readonly offset: number,
    /** What is wrong there. */
    readonly reason: string,
    /** The store's data directory, named in the hint. */
    readonly directory?: string,
  ) {
    super(
      `corrupt event log: ${file} at byte ${offset}: ${reason}` +
        (directory === undefined ? '' : `. Nothing was skipped; inspect it with \`lockstep repair ${directory}\` (a dry run until confirmed)`),
    );
  }
}
